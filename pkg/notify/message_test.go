package notify_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
)

// failed is a fully filled-in failure, shared by the tests.
func failed() notify.Message {
	return notify.Message{
		Kind:            notify.KindTableauRefreshFailed,
		DBTJobID:        "70",
		DBTJobName:      "Nightly build",
		DBTRunID:        "9001",
		DBTRunURL:       "https://cloud.getdbt.com/deploy/1/projects/2/runs/9001",
		TableauItemKind: "workbook",
		TableauItemName: "Sales & <Margin>",
		TableauItemID:   "3f1c",
		TableauItemURL:  "https://tableau.example.com/#/site/s/workbooks/12",
		TableauJobID:    "8d6e",
		Reason:          "Datasource connection failed\n  <!channel> password & user rejected  ",
		At:              time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)),
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name string
		m    notify.Message
		want string
	}{
		{
			name: "everything",
			m:    failed(),
			want: `Tableau refresh failed
dbt job:     Nightly build (id 70)
dbt run:     9001  https://cloud.getdbt.com/deploy/1/projects/2/runs/9001
Tableau:     workbook Sales & <Margin> (id 3f1c)  https://tableau.example.com/#/site/s/workbooks/12
Tableau job: 8d6e
At:          2026-01-02T02:04:05Z
Reason:      Datasource connection failed
             <!channel> password & user rejected`,
		},
		{
			name: "dbt run failed, no Tableau item",
			m: notify.Message{Kind: notify.KindDBTRunFailed, DBTJobID: "70", DBTRunID: "9001",
				Reason: "Database Error in model orders"},
			want: `dbt Cloud run failed
dbt job:     70
dbt run:     9001
Reason:      Database Error in model orders`,
		},
		{
			name: "data source known by id only",
			m:    notify.Message{Kind: notify.KindTableauJobStuck, TableauItemKind: "datasource", TableauItemID: "ab12"},
			want: "Tableau refresh job is stuck\nTableau:     data source ab12",
		},
		{
			name: "unknown kind reads as words",
			m:    notify.Message{Kind: "tableau_site_unreachable"},
			want: "Tableau site unreachable",
		},
		{
			name: "control characters in a name",
			m:    notify.Message{Kind: notify.KindDBTRunCancelled, DBTJobName: "Nightly\r\n\tbuild\x00"},
			want: "dbt Cloud run was cancelled\ndbt job:     Nightly build",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Text(); got != tt.want {
				t.Errorf("Text() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestTextCutsLongReason(t *testing.T) {
	m := notify.Message{Kind: notify.KindTableauRefreshFailed, Reason: strings.Repeat("stack frame ", 1000)}
	got := m.Text()
	if n := utf8.RuneCountInString(got); n > 1600 {
		t.Errorf("Text() is %d runes; the reason should be cut to about 1500", n)
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("Text() does not mark the cut: ...%q", got[len(got)-20:])
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name string
		m    notify.Message
		want string
	}{
		{"names the Tableau item", failed(), "Tableau refresh failed: Sales & <Margin>"},
		{"dbt job name without item", notify.Message{Kind: notify.KindDBTRunStuck, DBTJobName: "Nightly"}, "dbt Cloud run is stuck: Nightly"},
		{"dbt job id without name", notify.Message{Kind: notify.KindDBTRunFailed, DBTJobID: "70"}, "dbt Cloud run failed: dbt job 70"},
		{"non-ASCII replaced", notify.Message{Kind: notify.KindTableauRefreshSucceeded, TableauItemName: "Umsätze 📈"}, "Tableau refresh succeeded: Ums?tze ?"},
		{"line breaks collapsed", notify.Message{Kind: notify.KindTableauRefreshNotQueued, TableauItemName: "a\nb\r\n\tc"}, "Tableau refresh could not be queued: a b c"},
		{"empty kind", notify.Message{}, "dbt/Tableau notification"},
		{
			"cut to 99",
			notify.Message{Kind: notify.KindTableauRefreshFailed, TableauItemName: strings.Repeat("Ü", 150)},
			"Tableau refresh failed: " + strings.Repeat("?", 99-len("Tableau refresh failed: ")-3) + "...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.Subject()
			if got != tt.want {
				t.Errorf("Subject() = %q, want %q", got, tt.want)
			}
			if len(got) > 99 {
				t.Errorf("Subject() is %d bytes, want at most 99", len(got))
			}
			for _, r := range got {
				if r < 0x20 || r > 0x7e {
					t.Errorf("Subject() holds %q, not printable ASCII", r)
				}
			}
		})
	}
}

func TestKindFailure(t *testing.T) {
	for _, k := range []notify.Kind{
		notify.KindTableauRefreshFailed, notify.KindTableauRefreshNotQueued, notify.KindTableauJobStuck,
		notify.KindDBTRunFailed, notify.KindDBTRunCancelled, notify.KindDBTRunStuck, "something_new",
	} {
		if !k.Failure() {
			t.Errorf("%s.Failure() = false", k)
		}
	}
	if notify.KindTableauRefreshSucceeded.Failure() {
		t.Error("KindTableauRefreshSucceeded.Failure() = true")
	}
}
