package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed, or -yes was missing
	exitUsage = 2 // bad command line
)

const (
	progName      = "tableau-webhooks"
	defaultPrefix = "dbt-tableau-refresh"
)

const mainUsage = `usage: tableau-webhooks <command> [flags]

Manages the Tableau webhooks that send extract-refresh events to the bridge's
route POST /tableau/webhook/{token}. Tableau allows only site administrators
to manage webhooks.

commands:
  list     list every webhook on the site
  create   create one webhook per event, pointing at the bridge (idempotent)
  test     have Tableau send a test delivery and show the reply status
  delete   delete one webhook, or all of ours; needs -yes

Run "tableau-webhooks <command> -h" for a command's flags. Every command
takes -site <content URL>: the site whose webhooks to manage (default
TABLEAU_SITE), signed in to with that site's credentials (the secret's
tableau_sites[site] for a site other than TABLEAU_SITE).

environment (the same names as the functions; no refresh map needed):
  TABLEAU_SERVER_URL   Tableau Server or Tableau Cloud pod (required)
  TABLEAU_SITE         site content URL; empty for the default site
  TABLEAU_SITES        where other sites are, when not on TABLEAU_SERVER_URL:
                       {"<content url>": {"server_url": "https://...", "api_version": "3.24"}}
  TABLEAU_API_VERSION  REST API version; empty to ask the server (webhooks need 3.6)
  SECRET_ID            Secrets Manager secret holding the credentials JSON,
                       including tableau_webhook_token
  TABLEAU_PAT_NAME, TABLEAU_PAT_SECRET
                       a PAT to sign in with; with SECRET_ID set they take
                       precedence over the secret's, so an administrator can use
                       their own PAT (or TABLEAU_CLIENT_ID, TABLEAU_SECRET_ID,
                       TABLEAU_SECRET_VALUE, TABLEAU_USERNAME: a connected app)
  TABLEAU_WEBHOOK_TOKEN
                       the route's token when SECRET_ID is unset
  STATE_TABLE          DynamoDB state table: share the functions' Tableau session
                       instead of ending it (Tableau keeps one session per PAT)

Tokens and secrets are never printed: URLs are shown with their last path
segment masked (****wxyz).
`

// cli is one invocation: where it reads configuration and writes output.
type cli struct {
	env    func(string) string
	stdout io.Writer
	stderr io.Writer
	aws    awsAPIs
	red    redactor

	// who names the signed-in identity for messages, once known.
	who string
	// serverURL is the site's server (TABLEAU_SERVER_URL, or TABLEAU_SITES'
	// for another site), once read.
	serverURL string
	// site is -site, "" for TABLEAU_SITE.
	site string
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(c *cli, ctx context.Context, args []string) error
}

var commands = []command{
	{"list", "list every webhook on the site", (*cli).list},
	{"create", "create one webhook per event", (*cli).create},
	{"test", "send a test delivery", (*cli).test},
	{"delete", "delete webhooks", (*cli).delete},
}

// run is the whole program: main only supplies the process's arguments,
// environment and output streams, so tests drive it in-process.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, env, stdout, stderr, defaultAWS())
}

func runWith(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, aws awsAPIs) int {
	c := &cli{env: env, stdout: stdout, stderr: stderr, aws: aws}
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return c.finish(cmd.run(c, ctx, args[1:]))
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", progName, args[0], mainUsage)
	return exitUsage
}

// finish turns a command's error into the exit status and one readable line.
func (c *cli) finish(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "%s %s: %s\n", progName, ue.cmd, c.red.redact(oneLine(ue.msg)))
		if ue.brief {
			fmt.Fprintf(c.stderr, "run \"%s %s -h\" for usage\n", progName, ue.cmd)
		} else {
			fmt.Fprintln(c.stderr)
			c.stderrUsage(ue.fs, ue.usage)
		}
		return exitUsage
	}
	fmt.Fprintf(c.stderr, "%s: %s\n", progName, c.red.redact(oneLine(c.explain(err))))
	return exitFail
}

// explain is the one place where failures become what the user reads: the
// cause in words and what to do, not the wire detail.
func (c *cli) explain(err error) string {
	var unknown *unknownWebhookError
	var te *remote.TransportError
	switch {
	case errors.As(err, &unknown):
		return unknown.Error()
	case errors.Is(err, tableau.ErrForbidden):
		return "the signed-in user must be a site administrator to manage webhooks" + c.whoSuffix()
	case errors.Is(err, tableau.ErrBadCredentials):
		return "Tableau rejected the sign-in" + c.whoSuffix() +
			": check the PAT (or connected app) and the site (-site, TABLEAU_SITE): a PAT signs in to its own site only"
	case errors.Is(err, tableau.ErrUnsupportedVersion):
		return err.Error() + " (set TABLEAU_API_VERSION to 3.6 or later, or leave it empty to ask the server)"
	case errors.As(err, &te):
		return fmt.Sprintf("cannot reach Tableau at %s: %v", c.serverURL, te.Err)
	}
	return err.Error()
}

func (c *cli) whoSuffix() string {
	if c.who == "" {
		return ""
	}
	return " (signed in with " + c.who + ")"
}

// unknownWebhookError reports an id that names no webhook on the site.
type unknownWebhookError struct{ id string }

func (e *unknownWebhookError) Error() string {
	return fmt.Sprintf("no webhook with id %q on this site (see %q)", e.id, progName+" list")
}

// asUnknownWebhook maps Tableau's answers for a missing webhook (404, or
// 400113 from the test endpoint) to unknownWebhookError. 404001 is a missing
// API version, not a missing webhook.
func asUnknownWebhook(err error, id string) error {
	var te *tableau.Error
	if errors.As(err, &te) &&
		((te.StatusCode == http.StatusNotFound && te.Code != "404001") || te.Code == tableau.CodeWebhookTestNotFound) {
		return &unknownWebhookError{id: id}
	}
	return err
}

// oneLine keeps an error on one line: errors.Join and some server details
// carry newlines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// outf writes to stdout with every known secret masked.
func (c *cli) outf(format string, args ...any) {
	io.WriteString(c.stdout, c.red.redact(fmt.Sprintf(format, args...)))
}

// warnf writes a note to stderr with every known secret masked.
func (c *cli) warnf(format string, args ...any) {
	io.WriteString(c.stderr, c.red.redact(progName+": "+fmt.Sprintf(format, args...)))
}

// Flag handling: each command builds a FlagSet with newFlagSet and parses it
// with parse, which prints usage on -h (exit 0) and returns a usageError for
// bad input (exit 2, usage on stderr).

var errHelpShown = errors.New("help shown")

type usageError struct {
	cmd   string
	msg   string
	fs    *flag.FlagSet
	usage string
	brief bool // a bad flag value: the message says enough without the usage text
}

func (e *usageError) Error() string { return e.msg }

// flagSet is a command's flags and the text printed above them.
type flagSet struct {
	*flag.FlagSet
	usage string
	site  *string // -site, which every command takes
}

func newFlagSet(name, usage string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are printed by finish, once
	site := fs.String("site", "", "the content URL of the site whose webhooks to manage, signed in to with its own credentials (default TABLEAU_SITE)")
	return &flagSet{FlagSet: fs, usage: usage, site: site}
}

// parse reads args; nothing may follow the flags.
func (c *cli) parse(fs *flagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(c.stdout, fs.FlagSet, fs.usage)
		return errHelpShown
	case err != nil:
		return fs.fail(err.Error())
	case fs.NArg() > 0:
		return fs.fail(fmt.Sprintf("unexpected argument %q (flags come as -name value)", fs.Arg(0)))
	}
	if err := refreshmap.CheckSite(*fs.site); err != nil {
		return fs.invalid(fmt.Errorf("-site: %w", err))
	}
	c.site = *fs.site
	return nil
}

// fail is a usage error for this command: the message and the usage text.
func (fs *flagSet) fail(msg string) error {
	return &usageError{cmd: fs.Name(), msg: msg, fs: fs.FlagSet, usage: fs.usage}
}

// invalid is a bad flag value: the message, and where to find the usage.
func (fs *flagSet) invalid(err error) error {
	return &usageError{cmd: fs.Name(), msg: err.Error(), fs: fs.FlagSet, usage: fs.usage, brief: true}
}

func (c *cli) stderrUsage(fs *flag.FlagSet, usage string) { printUsage(c.stderr, fs, usage) }

func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, usage)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
