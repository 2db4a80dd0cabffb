package dbtcloud

import (
	"net/url"
	"strconv"
)

// RunURL is the page of a run in dbt Cloud's web UI,
// https://<host>/deploy/<account>/projects/<project>/runs/<run>, on the host
// of baseURL (DefaultBaseURL when empty). It is "" when an id is missing or
// baseURL is not a URL: a link to the wrong page is worse than none. Runs
// read from the Admin API carry the same link as Run.Href.
func RunURL(baseURL string, accountID int64, projectID, runID string) string {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || accountID <= 0 || !isID(projectID) || !isID(runID) {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/deploy/" + strconv.FormatInt(accountID, 10) + "/projects/" + projectID + "/runs/" + runID
}

func isID(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0
}
