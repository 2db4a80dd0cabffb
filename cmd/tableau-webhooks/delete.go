package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

const deleteUsage = `usage: tableau-webhooks delete (-id ID | -all [-name-prefix P]) -yes

Deletes one webhook by id (any webhook on the site), or with -all every
webhook named <prefix>-* (ours; others are left alone). The command never
prompts: without -yes it only shows what it would delete and exits 1.
`

func (c *cli) delete(ctx context.Context, args []string) error {
	fs := newFlagSet("delete", deleteUsage)
	id := fs.String("id", "", "the webhook to delete (see list)")
	all := fs.Bool("all", false, "delete every webhook named <prefix>-*")
	prefix := fs.String("name-prefix", defaultPrefix, "with -all: the prefix of our webhooks' names")
	yes := fs.Bool("yes", false, "really delete (there is no prompt)")
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
		c.outf("no webhooks named %s-* on this site: nothing to delete\n", *prefix)
		return nil
	}
	describe := func(result string, w *tableau.Webhook) []string {
		return []string{result, w.ID, w.Name, w.EventName(), displayURL(w.URL())}
	}
	header := []string{"RESULT", "ID", "NAME", "EVENT", "URL"}
	if !*yes {
		c.table(header, rows(hooks, func(w *tableau.Webhook) []string { return describe("would delete", w) }))
		what := "this webhook"
		if len(hooks) > 1 {
			what = fmt.Sprintf("these %d webhooks", len(hooks))
		}
		return fmt.Errorf("nothing deleted: re-run with -yes to delete %s", what)
	}
	var out [][]string
	defer func() {
		if len(out) > 0 {
			c.table(header, out)
		}
	}()
	for _, w := range hooks {
		err := client.DeleteWebhook(ctx, w.ID)
		var unknown *unknownWebhookError
		switch {
		case err == nil:
			out = append(out, describe("deleted", w))
		case errors.As(asUnknownWebhook(err, w.ID), &unknown) && *all:
			out = append(out, describe("already gone", w)) // deleted since we listed it
		case *id != "":
			return asUnknownWebhook(err, w.ID)
		default:
			return err
		}
	}
	return nil
}
