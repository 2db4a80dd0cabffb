package tableautest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// A refresh bridge signs in with a PAT, starts a refresh, meets the 409093 a
// second refresh gets while the first is queued, and sees the job fail.
func Example() {
	srv := tableautest.NewServer(tableautest.WithJobTimings(-1, -1)) // jobs wait for FinishJob
	defer srv.Close()
	srv.AddPAT("bridge", "s3cret")
	wb := srv.AddWorkbook("Sales", "Finance")

	call := func(method, path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL()+"/api/3.23/"+path, strings.NewReader(body))
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-Tableau-Auth", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	_, signin := call("POST", "auth/signin", "",
		`{"credentials":{"personalAccessTokenName":"bridge","personalAccessTokenSecret":"s3cret","site":{"contentUrl":""}}}`)
	creds := signin["credentials"].(map[string]any)
	token := creds["token"].(string)
	site := creds["site"].(map[string]any)["id"].(string)

	status, started := call("POST", "sites/"+site+"/workbooks/"+wb+"/refresh", token, "{}")
	jobID := started["job"].(map[string]any)["id"].(string)
	fmt.Println(status)

	status, dup := call("POST", "sites/"+site+"/workbooks/"+wb+"/refresh", token, "{}")
	fmt.Println(status, dup["error"].(map[string]any)["code"])

	_ = srv.FinishJob(jobID, 1, "Login failed for user 'etl'.")
	_, job := call("GET", "sites/"+site+"/jobs/"+jobID, token, "")
	j := job["job"].(map[string]any)
	fmt.Println(j["finishCode"], j["extractRefreshJob"].(map[string]any)["notes"])
	// Output:
	// 202
	// 409 409093
	// 1 Login failed for user 'etl'.
}
