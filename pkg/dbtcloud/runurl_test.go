package dbtcloud

import "testing"

func TestRunURL(t *testing.T) {
	tests := []struct {
		name, base   string
		account      int64
		project, run string
		want         string
	}{
		{"default host", "", 1, "2", "3", "https://cloud.getdbt.com/deploy/1/projects/2/runs/3"},
		{"cell host, path ignored", "https://ab123.us1.dbt.com/", 70, "471", "91827", "https://ab123.us1.dbt.com/deploy/70/projects/471/runs/91827"},
		{"no project", "", 1, "", "3", ""},
		{"run not a number", "", 1, "2", "3/../../x", ""},
		{"no account", "", 0, "2", "3", ""},
		{"not a URL", "cloud.getdbt.com", 1, "2", "3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RunURL(tt.base, tt.account, tt.project, tt.run); got != tt.want {
				t.Errorf("RunURL = %q, want %q", got, tt.want)
			}
		})
	}
}
