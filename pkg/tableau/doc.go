// Package tableau is a client for the Tableau REST API
// (https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api.htm),
// limited to what refreshing extracts after dbt runs needs: find workbooks
// and data sources, start refreshes, follow jobs, manage webhooks.
//
// Refreshing a workbook by name:
//
//	c, err := tableau.NewClient("https://tableau.example.com",
//		tableau.WithSite("mysite"),
//		tableau.WithPAT("refresh-bot", os.Getenv("TABLEAU_PAT_SECRET")))
//	if err != nil {
//		return err
//	}
//	wb, err := c.FindWorkbook(ctx, "Sales", "Finance")
//	if err != nil {
//		return err // *NotFoundError, *AmbiguousError, or a REST error
//	}
//	res, err := c.RefreshWorkbook(ctx, wb.ID) // res.AlreadyQueued on 409093
//
// The Client signs in lazily, keeps the session for the life of the process
// (a warm Lambda reuses it), and when Tableau reports the session ended
// (401002) signs in once more and repeats the call, once. Requests ask for
// JSON; a reply in XML or HTML, or truncated JSON, is a *FormatError that
// says what arrived. Failures are typed: *Error carries the status and
// Tableau's error code and matches sentinels such as ErrNotFound and
// ErrNoExtract with errors.Is; Retryable tells transient failures from ones
// that need a person.
//
// # One session per personal access token
//
// Tableau keeps a single session per PAT: signing in again ends the previous
// session. Several Lambda instances sharing a PAT, each signing in for
// itself, would keep logging each other out. Give every Client the same
// SessionStore (WithSessionStore): a Client then adopts the session stored
// there, and only the instance holding the store's sign-in lease signs in
// while the others wait for the session it saves. Connected-app sign-in
// (WithConnectedApp) avoids the problem: each sign-in presents a fresh JWT
// and starts a session of its own without ending the others, so instances
// need no store. Prefer it where the site allows connected apps.
//
// Nothing this package logs contains a token, a PAT secret or a JWT.
package tableau
