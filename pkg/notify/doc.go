// Package notify tells people when something in the bridge needs them: a
// Tableau extract refresh that failed, could not be queued or is stuck, or a
// dbt Cloud run that failed, was cancelled or is stuck.
//
// A [Message] describes one such event and renders itself as plain text
// ([Message.Text], [Message.Subject]) and as Slack mrkdwn. A [Notifier]
// delivers it: [Slack] posts to an incoming webhook, [SNS] publishes to a
// topic, and [LogNotifier] writes it to the log when nothing else is
// configured. Package followup delivers each message once per channel,
// through an outbox.
//
// Delivery is at least once: a Slack post whose connection broke after the
// request was sent is retried, because a duplicate alert costs less than a
// missed one.
package notify
