package notify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
)

func ExampleMessage_Text() {
	m := notify.Message{
		Kind:            notify.KindTableauRefreshFailed,
		DBTJobID:        "70",
		DBTJobName:      "Nightly build",
		DBTRunID:        "9001",
		DBTRunURL:       "https://cloud.getdbt.com/deploy/1/projects/2/runs/9001",
		TableauItemKind: "workbook",
		TableauItemName: "Sales",
		TableauItemURL:  "https://tableau.example.com/#/site/s/workbooks/12",
		TableauJobID:    "8d6e",
		Reason:          "Datasource connection failed",
		At:              time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	fmt.Println(m.Subject())
	fmt.Println(m.Text())
	// Output:
	// Tableau refresh failed: Sales
	// Tableau refresh failed
	// dbt job:     Nightly build (id 70)
	// dbt run:     9001  https://cloud.getdbt.com/deploy/1/projects/2/runs/9001
	// Tableau:     workbook Sales  https://tableau.example.com/#/site/s/workbooks/12
	// Tableau job: 8d6e
	// At:          2026-01-02T03:04:05Z
	// Reason:      Datasource connection failed
}

// With no channel configured, a LogNotifier stands in, so a failure still
// reaches the function's logs; ErrNoChannel tells the caller it was not sent.
func ExampleLogNotifier() {
	n := notify.LogNotifier{
		Logger: slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{} // keep the output stable
				}
				return a
			},
		})),
	}
	err := n.Notify(context.Background(), notify.Message{Kind: notify.KindDBTRunCancelled, DBTJobID: "70"})
	fmt.Println(errors.Is(err, notify.ErrNoChannel))
	// Output:
	// level=ERROR msg="notify: dbt Cloud run was cancelled: dbt job 70" kind=dbt_run_cancelled dbt_job_id=70 channel=log
	// true
}
