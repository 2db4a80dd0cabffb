package main

import (
	"fmt"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// refreshEvents are the events the bridge's route handles, in the order
// create works through them.
var refreshEvents = []string{
	tableau.EventWorkbookRefreshStarted,
	tableau.EventWorkbookRefreshSucceeded,
	tableau.EventWorkbookRefreshFailed,
	tableau.EventDatasourceRefreshStarted,
	tableau.EventDatasourceRefreshSucceeded,
	tableau.EventDatasourceRefreshFailed,
}

// defaultEvents are the outcomes: the bridge acts on a refresh's end, and
// the Started events would only cost an invocation each.
var defaultEvents = []string{
	tableau.EventWorkbookRefreshSucceeded,
	tableau.EventWorkbookRefreshFailed,
	tableau.EventDatasourceRefreshSucceeded,
	tableau.EventDatasourceRefreshFailed,
}

// otherEvents are Tableau events the bridge does not handle, named so that
// asking for one gets a clearer answer than "unknown".
var otherEvents = []string{
	tableau.EventDatasourceCreated, tableau.EventDatasourceUpdated, tableau.EventDatasourceDeleted,
	tableau.EventWorkbookCreated, tableau.EventWorkbookUpdated, tableau.EventWorkbookDeleted,
	tableau.EventViewDeleted, tableau.EventUserDeleted, tableau.EventAdminPromoted, tableau.EventAdminDemoted,
	tableau.EventLabelCreated, tableau.EventLabelUpdated, tableau.EventLabelDeleted,
	tableau.EventSiteCreated, tableau.EventSiteUpdated, tableau.EventSiteDeleted,
}

// parseEvents reads the comma-separated -events flag. Names match without
// regard to case and come back spelled as Tableau spells them, without
// duplicates, in the order given.
func parseEvents(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, raw := range strings.Split(list, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			return nil, fmt.Errorf("-events %q has an empty name; valid events: %s", list, strings.Join(refreshEvents, ", "))
		}
		ev, ok := lookupEvent(refreshEvents, name)
		if !ok {
			if other, known := lookupEvent(otherEvents, name); known {
				return nil, fmt.Errorf("event %s is not a refresh event, and the bridge handles only: %s", other, strings.Join(refreshEvents, ", "))
			}
			return nil, fmt.Errorf("unknown event %q; valid events: %s", name, strings.Join(refreshEvents, ", "))
		}
		if !seen[ev] {
			seen[ev] = true
			out = append(out, ev)
		}
	}
	return out, nil
}

func lookupEvent(events []string, name string) (string, bool) {
	for _, ev := range events {
		if strings.EqualFold(ev, name) {
			return ev, true
		}
	}
	return "", false
}

// webhookName is the name create gives the webhook for event; every name
// with the prefix and a dash counts as ours for test -all and delete -all.
func webhookName(prefix, event string) string { return prefix + "-" + event }

func isOurs(name, prefix string) bool { return strings.HasPrefix(name, prefix+"-") }

// checkPrefix validates -name-prefix.
func checkPrefix(prefix string) error {
	if strings.TrimSpace(prefix) == "" || strings.TrimSpace(prefix) != prefix {
		return fmt.Errorf("-name-prefix %q: want a non-empty name without surrounding spaces, e.g. %q", prefix, defaultPrefix)
	}
	return nil
}
