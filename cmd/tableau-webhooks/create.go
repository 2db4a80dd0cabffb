package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

var createUsage = `usage: tableau-webhooks create -url https://<api>/tableau/webhook [-events E1,E2,...] [-name-prefix P] [-replace]

Creates one webhook per event (a Tableau webhook has exactly one), named
<prefix>-<event>, delivering to <url>/<token> where the token is the
credentials' tableau_webhook_token. The default events are the refresh
outcomes: ` + strings.Join(defaultEvents, ", ") + `;
the Started events may be added.

Safe to repeat: a webhook with the same name, event and URL is left alone and
reported. One with our name but another event or URL (a rotated token, a
redeployed API), or one Tableau has disabled, stops the command with nothing
changed, unless -replace is given: then it is deleted and created anew.
`

func (c *cli) create(ctx context.Context, args []string) error {
	fs := newFlagSet("create", createUsage)
	rawURL := fs.String("url", "", "the bridge's Tableau webhook route, without the token, e.g. https://<api-id>.execute-api.<region>.amazonaws.com/tableau/webhook (required)")
	eventList := fs.String("events", strings.Join(defaultEvents, ","), "comma-separated Tableau events, one webhook each: "+strings.Join(refreshEvents, ", "))
	prefix := fs.String("name-prefix", defaultPrefix, "webhook names are <prefix>-<event>")
	replace := fs.Bool("replace", false, "delete and re-create webhooks with our names whose event or URL differ, or that Tableau disabled")
	allowHTTP := fs.Bool("allow-http", false, "accept a plain http URL on a loopback host (local testing against a simulator)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	// Everything that can be checked without the network is checked first.
	base, err := parseBaseURL(*rawURL, *allowHTTP)
	if err != nil {
		return fs.invalid(err)
	}
	events, err := parseEvents(*eventList)
	if err != nil {
		return fs.invalid(err)
	}
	if err := checkPrefix(*prefix); err != nil {
		return fs.invalid(err)
	}

	client, cr, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	token := cr.TableauWebhookToken
	if err := checkToken(token, cr.tokenName); err != nil {
		return err
	}
	if strings.HasSuffix(base.Path, "/"+token) {
		return fs.invalid(errors.New("-url already ends with the token: give the route without it (…" + route + "); the token is added from the credentials"))
	}
	if !strings.HasSuffix(base.Path, route) {
		c.warnf("warning: -url does not end in %s, the bridge's route; deliveries may not reach it\n", route)
	}
	dest := destination(base, token)

	existing, err := client.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	plan, err := planCreate(existing, events, *prefix, dest, *replace)
	if err != nil {
		return err
	}
	for _, w := range plan.duplicates {
		c.warnf("warning: webhook %q (id %s) also sends %s to this URL, so the bridge will get each event twice\n",
			w.Name, w.ID, w.EventName())
	}

	var out [][]string
	defer func() {
		// Report what was done even when a later step failed.
		if len(out) > 0 {
			c.table([]string{"RESULT", "NAME", "ID", "EVENT", "URL"}, out)
		}
	}()
	for _, st := range plan.steps {
		result := "exists"
		id := ""
		if st.keep != nil {
			id = st.keep.ID
		}
		for _, old := range st.remove {
			if err := client.DeleteWebhook(ctx, old.ID); err != nil {
				if _, gone := asUnknownWebhook(err, old.ID).(*unknownWebhookError); !gone {
					return fmt.Errorf("replace webhook %q: %w", old.Name, err)
				}
			}
			out = append(out, []string{"deleted", old.Name, old.ID, old.EventName(), displayURL(old.URL())})
		}
		if st.keep == nil {
			created, err := client.CreateWebhook(ctx, tableau.NewWebhook(st.name, st.event, dest))
			if err != nil {
				return err
			}
			result, id = "created", created.ID
		}
		out = append(out, []string{result, st.name, id, st.event, displayURL(dest)})
	}
	return nil
}

// createPlan is what create will do, decided before anything changes.
type createPlan struct {
	steps []createStep
	// duplicates are webhooks under other names that already send one of
	// our events to our URL.
	duplicates []*tableau.Webhook
}

type createStep struct {
	name, event string
	keep        *tableau.Webhook   // the webhook that already matches; nil to create one
	remove      []*tableau.Webhook // ours by name but not as wanted (only with -replace)
}

// planCreate compares the site's webhooks with the wanted ones. Without
// replace, any webhook that has one of our names but not the wanted event,
// URL or enabled state is an error that names them all, and nothing changes.
func planCreate(existing []*tableau.Webhook, events []string, prefix, dest string, replace bool) (*createPlan, error) {
	plan := &createPlan{}
	var conflicts []string
	for _, ev := range events {
		st := createStep{name: webhookName(prefix, ev), event: ev}
		for _, w := range existing {
			sameTarget := w.EventName() == ev && sameURL(w.URL(), dest)
			if w.Name != st.name {
				if sameTarget {
					plan.duplicates = append(plan.duplicates, w)
				}
				continue
			}
			disabled := w.IsEnabled != nil && !*w.IsEnabled
			if sameTarget && !disabled && st.keep == nil {
				st.keep = w
				continue
			}
			st.remove = append(st.remove, w)
			conflicts = append(conflicts, describeConflict(w, ev, dest, disabled))
		}
		plan.steps = append(plan.steps, st)
	}
	// A webhook about to be replaced is no duplicate worth a warning.
	plan.duplicates = slices.DeleteFunc(plan.duplicates, func(d *tableau.Webhook) bool {
		return slices.ContainsFunc(plan.steps, func(st createStep) bool { return slices.Contains(st.remove, d) })
	})
	if len(conflicts) > 0 && !replace {
		return nil, fmt.Errorf("%s; nothing was changed: delete them first (%s delete -id ID -yes) or re-run create with -replace",
			strings.Join(conflicts, "; "), progName)
	}
	return plan, nil
}

func describeConflict(w *tableau.Webhook, event, dest string, disabled bool) string {
	var diffs []string
	if w.EventName() != event {
		diffs = append(diffs, "event "+w.EventName())
	}
	if !sameURL(w.URL(), dest) {
		diffs = append(diffs, "URL "+displayURL(w.URL()))
	}
	if len(diffs) == 0 && disabled {
		reason := ""
		if w.StatusChangeReason != "" {
			reason = ": " + w.StatusChangeReason
		}
		return fmt.Sprintf("webhook %q (id %s) is disabled by Tableau%s", w.Name, w.ID, reason)
	}
	if len(diffs) == 0 {
		return fmt.Sprintf("webhook %q (id %s) exists more than once", w.Name, w.ID)
	}
	return fmt.Sprintf("webhook %q (id %s) exists with %s", w.Name, w.ID, strings.Join(diffs, " and "))
}
