package dbtcloud

import "strconv"

// RunStatus is a dbt Cloud run status code.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Retrieve%20Run.
type RunStatus int

// The run status codes of the Admin API and webhook payloads.
const (
	StatusQueued    RunStatus = 1
	StatusStarting  RunStatus = 2
	StatusRunning   RunStatus = 3
	StatusSuccess   RunStatus = 10
	StatusError     RunStatus = 20
	StatusCancelled RunStatus = 30
)

// Terminal reports whether a run in this status will not change any more.
func (s RunStatus) Terminal() bool {
	return s == StatusSuccess || s == StatusError || s == StatusCancelled
}

// Success reports whether the run finished successfully.
func (s RunStatus) Success() bool { return s == StatusSuccess }

// String returns dbt's humanized name for the status.
func (s RunStatus) String() string {
	switch s {
	case StatusQueued:
		return "Queued"
	case StatusStarting:
		return "Starting"
	case StatusRunning:
		return "Running"
	case StatusSuccess:
		return "Success"
	case StatusError:
		return "Error"
	case StatusCancelled:
		return "Cancelled"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}
