package notify

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind says what happened. The values are stable strings: they are sent as
// the SNS message attribute "kind" so that subscriptions can filter on them.
type Kind string

// The kinds the bridge reports. Every kind except KindTableauRefreshSucceeded
// is a failure that someone should look at.
const (
	// KindTableauRefreshFailed: Tableau ran the extract refresh job and it
	// finished with an error (Reason holds the job's notes).
	KindTableauRefreshFailed Kind = "tableau_refresh_failed"
	// KindTableauRefreshNotQueued: Tableau refused to queue the refresh, e.g.
	// the item has no extract or the credentials were rejected.
	KindTableauRefreshNotQueued Kind = "tableau_refresh_not_queued"
	// KindTableauCredentialsRejected: Tableau refused the bridge's own
	// credentials (a revoked or mistyped PAT, say): nothing is refreshed
	// until a person fixes them; Reason says where.
	KindTableauCredentialsRejected Kind = "tableau_credentials_rejected"
	// KindLineageUnavailable: lineage cannot work for a reason a person
	// must fix (the Metadata API off, a user not allowed to see lineage);
	// the refresh map's targets are still refreshed. Reason says what to do.
	KindLineageUnavailable Kind = "lineage_unavailable"
	// KindTableauJobStuck: the refresh job has not finished in the time the
	// bridge allows it.
	KindTableauJobStuck Kind = "tableau_job_stuck"
	// KindDBTRunFailed: the dbt Cloud run finished with an error, so the
	// Tableau items that depend on it were not refreshed.
	KindDBTRunFailed Kind = "dbt_run_failed"
	// KindDBTRunCancelled: the dbt Cloud run was cancelled.
	KindDBTRunCancelled Kind = "dbt_run_cancelled"
	// KindDBTRunStuck: the dbt Cloud run has not finished in the time the
	// bridge allows it.
	KindDBTRunStuck Kind = "dbt_run_stuck"
	// KindTableauRefreshSucceeded: the refresh finished; sent only when a
	// deployment asks to hear about successes too.
	KindTableauRefreshSucceeded Kind = "tableau_refresh_succeeded"
)

// Failure reports whether k needs attention. Unknown kinds count as
// failures, so a kind added by a caller is never played down.
func (k Kind) Failure() bool { return k != KindTableauRefreshSucceeded }

// headline is the first line of every rendering.
func (k Kind) headline() string {
	switch k {
	case KindTableauRefreshFailed:
		return "Tableau refresh failed"
	case KindTableauRefreshNotQueued:
		return "Tableau refresh could not be queued"
	case KindTableauCredentialsRejected:
		return "Tableau rejected the bridge's credentials"
	case KindLineageUnavailable:
		return "Lineage is unavailable: only the refresh map is refreshed"
	case KindTableauJobStuck:
		return "Tableau refresh job is stuck"
	case KindDBTRunFailed:
		return "dbt Cloud run failed"
	case KindDBTRunCancelled:
		return "dbt Cloud run was cancelled"
	case KindDBTRunStuck:
		return "dbt Cloud run is stuck"
	case KindTableauRefreshSucceeded:
		return "Tableau refresh succeeded"
	case "":
		return "dbt/Tableau notification"
	}
	// A kind this package does not know still reads as words.
	s := strings.ReplaceAll(string(k), "_", " ")
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// emoji marks the Slack headline so a failure stands out in a busy channel.
func (k Kind) emoji() string {
	switch k {
	case KindTableauRefreshSucceeded:
		return ":white_check_mark:"
	case KindTableauJobStuck, KindDBTRunStuck, KindDBTRunCancelled, KindTableauRefreshNotQueued:
		return ":warning:"
	}
	return ":x:"
}

// Message describes one event worth telling people about. Only Kind is
// needed; empty fields are left out of every rendering, so a caller fills in
// what it knows. IDs are strings because dbt Cloud's webhooks carry them as
// strings and Tableau's are LUIDs.
type Message struct {
	Kind Kind `json:"kind"`

	DBTJobID   string `json:"dbt_job_id,omitempty"`
	DBTJobName string `json:"dbt_job_name,omitempty"`
	DBTRunID   string `json:"dbt_run_id,omitempty"`
	// DBTRunURL links to the run in dbt Cloud, where its logs are.
	DBTRunURL string `json:"dbt_run_url,omitempty"`

	// TableauItemKind is "workbook" or "datasource".
	TableauItemKind string `json:"tableau_item_kind,omitempty"`
	TableauItemName string `json:"tableau_item_name,omitempty"`
	TableauItemID   string `json:"tableau_item_id,omitempty"`
	// TableauItemURL links to the workbook or data source in Tableau.
	TableauItemURL string `json:"tableau_item_url,omitempty"`
	// TableauJobID is the refresh job's LUID.
	TableauJobID string `json:"tableau_job_id,omitempty"`

	// Reason is why it happened, in the words of the system that knows:
	// Tableau's job notes or error, or dbt Cloud's status message.
	Reason string `json:"reason,omitempty"`
	// At is when it happened; the zero time is left out.
	At time.Time `json:"at,omitzero"`
}

// Length caps. Tableau's job notes can hold a whole stack trace; the message
// should point at the problem, and the links lead to the rest.
const (
	maxNameLen   = 200
	maxReasonLen = 1500
	// maxSubjectLen keeps the SNS subject within its limit, which the SDK
	// documents as "less than 100 characters".
	maxSubjectLen = 99
)

// Text renders the message as a few lines of plain text, for SNS (e-mail
// subscribers read it as is) and for logs. Reason comes last because it is
// the longest and may span lines.
//
//	Tableau refresh failed
//	dbt job:     Nightly build (id 70)
//	dbt run:     9001  https://cloud.getdbt.com/deploy/1/projects/2/runs/9001
//	Tableau:     workbook Sales & Margin (id 3f1c)  https://tableau.example.com/#/workbooks/12
//	Tableau job: 8d6e
//	At:          2026-01-02T03:04:05Z
//	Reason:      Datasource connection failed
func (m Message) Text() string {
	var b strings.Builder
	b.WriteString(m.Kind.headline())
	line := func(label, value string) {
		if value != "" {
			b.WriteString("\n")
			b.WriteString(label)
			b.WriteString(value)
		}
	}
	line("dbt job:     ", m.dbtJob())
	run := cleanLine(m.DBTRunID, maxNameLen)
	if m.DBTRunURL != "" {
		run = strings.TrimSpace(run + "  " + cleanLine(m.DBTRunURL, 0))
	}
	line("dbt run:     ", run)
	item := ""
	if name := m.itemName(); name != "" {
		item = m.itemKind() + " " + name
		if id := cleanLine(m.TableauItemID, maxNameLen); id != "" {
			item += " (id " + id + ")"
		}
	} else if id := cleanLine(m.TableauItemID, maxNameLen); id != "" {
		item = m.itemKind() + " " + id
	}
	if m.TableauItemURL != "" {
		item = strings.TrimSpace(item + "  " + cleanLine(m.TableauItemURL, 0))
	}
	line("Tableau:     ", item)
	line("Tableau job: ", cleanLine(m.TableauJobID, maxNameLen))
	line("At:          ", m.at())
	// Continuation lines of the reason line up under its first line.
	line("Reason:      ", strings.ReplaceAll(m.reason(), "\n", "\n             "))
	return b.String()
}

// Subject renders a one-line summary: printable ASCII only and at most 99
// characters, as an SNS subject (and an e-mail subject line) must be. Other
// characters become '?', so a subject is never rejected for its content.
func (m Message) Subject() string { return asciiLine(m.summary(), maxSubjectLen) }

// summary is the subject before it is squeezed into ASCII: Slack's
// notification text, which may keep "Umsätze".
func (m Message) summary() string {
	s := m.Kind.headline()
	about := m.itemName()
	if about == "" {
		about = m.dbtJobLabel()
	}
	if about != "" {
		s += ": " + about
	}
	return s
}

func (m Message) dbtJobLabel() string {
	if name := cleanLine(m.DBTJobName, maxNameLen); name != "" {
		return name
	}
	if id := cleanLine(m.DBTJobID, maxNameLen); id != "" {
		return "dbt job " + id
	}
	return ""
}

func (m Message) dbtJob() string {
	name := cleanLine(m.DBTJobName, maxNameLen)
	id := cleanLine(m.DBTJobID, maxNameLen)
	switch {
	case name != "" && id != "":
		return name + " (id " + id + ")"
	case name != "":
		return name
	}
	return id
}

func (m Message) itemName() string { return cleanLine(m.TableauItemName, maxNameLen) }

// itemKind reads Tableau's API word for the item as people say it.
func (m Message) itemKind() string {
	switch k := strings.ToLower(strings.TrimSpace(m.TableauItemKind)); k {
	case "datasource", "data source", "data_source":
		return "data source"
	case "":
		return "item"
	default:
		return cleanLine(k, 40)
	}
}

func (m Message) at() string {
	if m.At.IsZero() {
		return ""
	}
	return m.At.UTC().Format(time.RFC3339)
}

// reason keeps the line breaks of Tableau's notes but nothing else that
// could garble a terminal or a chat message.
func (m Message) reason() string {
	lines := strings.Split(strings.TrimSpace(m.Reason), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if l = cleanLine(l, 0); l != "" {
			kept = append(kept, l)
		}
	}
	return truncate(strings.Join(kept, "\n"), maxReasonLen)
}

// cleanLine turns runs of whitespace and control characters into single
// spaces and trims the result, then cuts it to max runes (0: no limit).
func cleanLine(s string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if max > 0 {
		return truncate(b.String(), max)
	}
	return b.String()
}

// truncate cuts s to at most max runes, marking the cut with an ellipsis.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	runes := []rune(s)
	return strings.TrimRightFunc(string(runes[:max-1]), unicode.IsSpace) + "…"
}

// asciiLine keeps printable ASCII, replaces other characters with '?' and
// cuts to max bytes with "..." marking the cut.
func asciiLine(s string, max int) string {
	s = cleanLine(s, 0)
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	out := b.String()
	if len(out) > max {
		out = strings.TrimRight(out[:max-3], " ") + "..."
	}
	return out
}
