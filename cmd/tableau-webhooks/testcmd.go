package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

const testUsage = `usage: tableau-webhooks test (-id ID | -all [-name-prefix P])

Has Tableau send its empty test delivery to each webhook's destination and
prints the status the destination answered. -all tests our webhooks (names
starting with <prefix>-). Exits 1 when any destination answered other than 2xx
or could not be reached.
`

// maxBodyShown caps how much of a destination's reply is printed.
const maxBodyShown = 200

func (c *cli) test(ctx context.Context, args []string) error {
	fs := newFlagSet("test", testUsage)
	id := fs.String("id", "", "the webhook to test (see list)")
	all := fs.Bool("all", false, "test every webhook named <prefix>-*")
	prefix := fs.String("name-prefix", defaultPrefix, "with -all: the prefix of our webhooks' names")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := checkSelection(fs, *id, *all, *prefix); err != nil {
		return err
	}
	client, _, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	hooks, err := selectWebhooks(ctx, client, *id, *prefix)
	if err != nil {
		return err
	}
	if len(hooks) == 0 {
		return fmt.Errorf("no webhooks named %s-* on this site: create them with %q", *prefix, progName+" create")
	}

	var out [][]string
	failed, unreachable, gone := 0, 0, 0
	for _, w := range hooks {
		status, reply := "", ""
		res, err := client.TestWebhook(ctx, w.ID)
		switch {
		case err == nil:
			status = strconv.Itoa(res.Status) + " " + http.StatusText(res.Status)
			if res.Status < 200 || res.Status > 299 {
				failed++
				reply = snippet(res.Body)
			}
		case isDeliveryFailure(err):
			// Tableau could not deliver at all: it says why.
			failed++
			unreachable++
			status, reply = "unreachable", snippet(tableauDetail(err))
		default:
			if *id != "" {
				return asUnknownWebhook(err, w.ID)
			}
			var unknown *unknownWebhookError
			if errors.As(asUnknownWebhook(err, w.ID), &unknown) {
				failed++ // deleted since we listed it
				gone++
				status = "gone"
				break
			}
			return err
		}
		out = append(out, []string{w.ID, w.Name, w.EventName(), displayURL(w.URL()), status, reply})
	}
	header := []string{"ID", "NAME", "EVENT", "URL", "STATUS", "REPLY"}
	if !slices.ContainsFunc(out, func(r []string) bool { return r[5] != "" }) {
		header = header[:5] // every reply was 2xx: nothing to show
		for i := range out {
			out[i] = out[i][:5]
		}
	}
	c.table(header, out)
	if failed > 0 {
		return fmt.Errorf("%d of %d test deliveries failed: %s", failed, len(hooks), failureHints(failed-unreachable-gone, unreachable, gone))
	}
	return nil
}

// failureHints says what to look at for each kind of failed delivery: an
// answer other than 2xx comes from the bridge (or whatever holds the URL);
// no answer at all means Tableau could not connect.
func failureHints(answered, unreachable, gone int) string {
	var hints []string
	if answered > 0 {
		hints = append(hints, "a 401, 403 or 404 from the bridge usually means a stale URL or token: re-run create with -replace")
	}
	if unreachable > 0 {
		hints = append(hints, "Tableau could not connect to the destination: check that the URL is the stack's TableauWebhookUrl output, reachable from Tableau over https with a valid certificate (a local API needs the simulator and -allow-http)")
	}
	if gone > 0 {
		hints = append(hints, "a webhook was deleted while testing: run list")
	}
	return strings.Join(hints, "; ")
}

// checkSelection validates -id and -all, shared by test and delete.
func checkSelection(fs *flagSet, id string, all bool, prefix string) error {
	switch {
	case id != "" && all:
		return fs.fail("give -id or -all, not both")
	case id == "" && !all:
		return fs.fail("give -id ID (see list) or -all")
	case id != "" && (strings.TrimSpace(id) != id || strings.ContainsAny(id, "/?#")):
		return fs.invalid(fmt.Errorf("-id %q is not a webhook id (see list)", id))
	}
	if all {
		if err := checkPrefix(prefix); err != nil {
			return fs.invalid(err)
		}
	}
	return nil
}

// selectWebhooks returns the webhook with the given id, or with id empty
// every webhook whose name has our prefix.
func selectWebhooks(ctx context.Context, client *tableau.Client, id, prefix string) ([]*tableau.Webhook, error) {
	if id != "" {
		w, err := client.Webhook(ctx, id)
		if err != nil {
			return nil, asUnknownWebhook(err, id)
		}
		return []*tableau.Webhook{w}, nil
	}
	all, err := client.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	var ours []*tableau.Webhook
	for _, w := range all {
		if isOurs(w.Name, prefix) {
			ours = append(ours, w)
		}
	}
	return ours, nil
}

// isDeliveryFailure reports Tableau's 400 for a test delivery that could not
// reach the destination, as opposed to a request Tableau refused.
func isDeliveryFailure(err error) bool {
	var te *tableau.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusBadRequest && te.Code != tableau.CodeWebhookTestNotFound
}

func tableauDetail(err error) string {
	var te *tableau.Error
	if errors.As(err, &te) && te.Detail != "" {
		return te.Detail
	}
	return err.Error()
}

func snippet(s string) string {
	s = oneLine(s)
	if len(s) > maxBodyShown {
		s = strings.ToValidUTF8(s[:maxBodyShown], "") + "…"
	}
	return s
}
