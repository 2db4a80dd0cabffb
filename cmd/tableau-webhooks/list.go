package main

import (
	"context"
	"strings"
	"text/tabwriter"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

const listUsage = `usage: tableau-webhooks list

Lists every webhook on the site (not only ours): id, name, event, destination
URL with its last path segment masked, and whether Tableau has it enabled
(Tableau disables a webhook whose destination keeps failing).
`

func (c *cli) list(ctx context.Context, args []string) error {
	fs := newFlagSet("list", listUsage)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	client, _, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	hooks, err := client.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	if len(hooks) == 0 {
		c.outf("no webhooks on this site\n")
		return nil
	}
	c.table([]string{"ID", "NAME", "EVENT", "URL", "ENABLED"}, rows(hooks, func(w *tableau.Webhook) []string {
		return []string{w.ID, w.Name, w.EventName(), displayURL(w.URL()), enabled(w)}
	}))
	return nil
}

// enabled describes Webhook.IsEnabled, with Tableau's reason when it has
// disabled the webhook.
func enabled(w *tableau.Webhook) string {
	switch {
	case w.IsEnabled == nil:
		return "-"
	case *w.IsEnabled:
		return "yes"
	case w.StatusChangeReason != "":
		return "no (" + w.StatusChangeReason + ")"
	}
	return "no"
}

func rows(hooks []*tableau.Webhook, row func(*tableau.Webhook) []string) [][]string {
	out := make([][]string, len(hooks))
	for i, w := range hooks {
		out[i] = row(w)
	}
	return out
}

// table prints aligned columns to stdout, secrets masked.
func (c *cli) table(header []string, rows [][]string) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	tw.Write([]byte(strings.Join(header, "\t") + "\n"))
	for _, r := range rows {
		for i := range r {
			r[i] = oneLine(r[i]) // a tab or newline in a name would break the table
		}
		tw.Write([]byte(strings.Join(r, "\t") + "\n"))
	}
	tw.Flush()
	c.outf("%s", b.String())
}
