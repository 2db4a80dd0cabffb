// Package tableau is a client for the Tableau REST API
// (https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api.htm),
// limited to what refreshing extracts after dbt runs needs: find workbooks
// and data sources, start refreshes, follow jobs, manage webhooks; and of
// the Metadata API (GraphQL), to learn which content reads which database
// tables (QueryMetadata, FetchLineagePage, WalkLineage, LookupTables).
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
// # Lineage
//
// An index of which content reads which tables is built page by page
// (FetchLineagePage, or WalkLineage within a deadline) from a LineageCursor
// the caller keeps, so a build too big for one Lambda invocation resumes in
// the next. Pages shrink when Tableau's node or time limit is hit. Tables the
// index does not know are looked up together in one query (LookupTables).
// Edges applies Tableau's rules: published extracts are refreshed as data
// sources, embedded extracts through their workbook, a workbook that only
// reads published data sources needs nothing of its own, live connections
// have nothing to refresh. When lineage cannot be read at all the error says
// why and MetadataFix names the fix: the Metadata API switched off on
// Tableau Server (ErrMetadataDisabled), or a user not allowed to read it
// (ErrLineageForbidden; tables hidden from it are counted as HiddenTables).
//
// Nothing this package logs contains a token, a PAT secret or a JWT.
package tableau
