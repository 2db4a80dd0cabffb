// Package app is the composition root: from a configuration it builds
// every part a function needs — the AWS clients, the state stores, the
// Tableau and dbt Cloud clients with credentials that follow the secret,
// the refresher, the notification channels — and the handlers the
// functions' mains start. It holds no logic of its own.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/scheduler"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/sites"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/status"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// App is everything a function needs, built once per process.
type App struct {
	Config   *config.Config
	Logger   *slog.Logger
	Secrets  secrets.Source
	Store    state.Idempotency
	Runs     state.ScheduledRuns
	Jobs     state.TableauJobs
	Outbox   state.Outbox
	Sessions tableau.SessionStore
	// Deferred holds the targets not queued in their invocation's time.
	Deferred state.Deferrals
	// Tableau is the default site's client (TABLEAU_SITE); Sites holds it
	// and the other sites', each made on first use. Each signs in with its
	// site's credentials in the secret as they are now.
	Tableau *tableau.Client
	Sites   *sites.Clients
	// DBT is nil when DBT_ACCOUNT_ID is not set: the scheduled path is off.
	DBT       *dbtcloud.Client
	Refresher *refresh.Refresher
	Alerts    *followup.Alerts
	Tracker   *followup.Tracker
	// Lineage is the lineage index; Planner finds a run's targets with it
	// (or with the map alone when lineage is off); Builder builds it.
	Lineage state.LineageIndex
	Planner *lineage.Planner
	Builder *lineage.Builder
	// Statuses holds each target's last runs for the status page; Status
	// keeps them (and the data quality warnings) as refreshes settle.
	Statuses state.TargetStatuses
	Status   *status.Recorder
}

// NewLogger returns the JSON logger the functions write with: to stdout in
// Lambda, which sends both streams to CloudWatch, and to stderr in a local
// run, whose stdout carries the function's reply alone (make invoke).
func NewLogger(level slog.Level) *slog.Logger {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		return logging.New(os.Stderr, level)
	}
	return logging.New(os.Stdout, level)
}

// Build makes an App. It does no network I/O, so cold starts stay short:
// the secret is read and Tableau signed in to on first use. The options are
// added to the Tableau client's (tests pass faster retries).
func Build(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...tableau.Option) (*App, error) {
	a := &App{Config: cfg, Logger: logger}
	var awsCfg aws.Config
	if cfg.SecretID != "" || cfg.StateTable != "" || cfg.NotifyTopicARN != "" {
		var err error
		// The SDK's own loading (the environment Lambda sets, and profiles
		// and SSO for local runs): it costs the cold start about half a
		// millisecond over a hand-written reader of the environment
		// (README, "Performance").
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
	}
	if cfg.SecretID != "" {
		a.Secrets = secrets.NewCache(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, secrets.WithTTL(cfg.SecretCacheTTL), secrets.WithLogger(logger))
	} else {
		a.Secrets = secrets.Env{Getenv: cfg.Getenv}
	}
	if cfg.StateTable != "" {
		tbl, err := dynamo.New(dynamo.NewClient(awsCfg), cfg.StateTable)
		if err != nil {
			return nil, err
		}
		a.Store, a.Runs, a.Jobs, a.Outbox, a.Sessions, a.Lineage = tbl, tbl.Runs(), tbl, tbl, tbl, tbl
		a.Deferred, a.Statuses = tbl, tbl
	} else {
		mem := state.NewMemory()
		a.Store, a.Runs, a.Jobs, a.Outbox, a.Sessions, a.Lineage = mem, mem.Runs(), mem, mem, tableau.NewMemorySessionStore(), mem
		a.Deferred, a.Statuses = mem, mem
	}

	catalog := cfg.Sites
	if catalog == nil {
		catalog, _ = sites.Parse("", sites.Site{ContentURL: cfg.TableauSite, ServerURL: cfg.TableauServerURL, APIVersion: cfg.TableauAPIVersion}, false)
	}
	var err error
	a.Sites, err = sites.NewClients(catalog, func(s sites.Site) (*tableau.Client, error) {
		where := "the Secrets Manager secret " + cfg.SecretID
		if cfg.SecretID == "" {
			where = "the environment's TABLEAU_SITES"
		}
		tOpts := []tableau.Option{
			tableau.WithSite(s.ContentURL),
			tableau.WithLogger(logger),
			tableau.WithSessionStore(a.Sessions),
			tableau.WithCredentialsProvider(tableauCredentials{src: a.Secrets, scopes: tableauScopes(cfg), site: s.Key(), where: where}),
		}
		if s.APIVersion != "" {
			tOpts = append(tOpts, tableau.WithAPIVersion(s.APIVersion))
		}
		return tableau.NewClient(s.ServerURL, append(tOpts, opts...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("configuration: TABLEAU_SERVER_URL: %w", err)
	}
	a.Tableau = a.Sites.Default()
	if cfg.DBTAccountID != 0 {
		dOpts := []dbtcloud.Option{dbtcloud.WithAccountID(cfg.DBTAccountID), dbtcloud.WithTokenProvider(dbtToken{a.Secrets}), dbtcloud.WithLogger(logger)}
		if cfg.DBTCloudURL != "" {
			dOpts = append(dOpts, dbtcloud.WithBaseURL(cfg.DBTCloudURL))
		}
		if a.DBT, err = dbtcloud.NewClient(dOpts...); err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
	}

	slack, err := notify.NewSlackFromProvider(slackURL{a.Secrets}, notify.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	channels := map[string]notify.Notifier{"slack": slack}
	if cfg.NotifyTopicARN != "" {
		sn, err := notify.NewSNS(sns.NewFromConfig(awsCfg), cfg.NotifyTopicARN)
		if err != nil {
			return nil, fmt.Errorf("configuration: NOTIFY_TOPIC_ARN: %w", err)
		}
		channels["sns"] = sn
	}
	a.Alerts = followup.NewAlerts(a.Outbox, channels, followup.WithNotifySuccess(cfg.NotifySuccess), followup.WithLogger(logger))
	recOpts := a.statusOptions()
	if cfg.QualityWarnings {
		recOpts = append(recOpts, status.WithQualityWarnings(a.Tableau),
			status.WithSiteWarnings(func(site string) (status.Warnings, error) { return a.Sites.Client(site) }))
	}
	a.Status = status.NewRecorder(a.Statuses, recOpts...)
	a.Refresher = refresh.New(a.Store, a.Tableau, refresh.WithRetention(cfg.Retention), refresh.WithJobs(a.Jobs), refresh.WithRides(a.Tableau),
		refresh.WithAlerts(a.Alerts), refresh.WithLogger(logger), refresh.WithCredentialsAt(cfg.CredentialsAt()),
		refresh.WithSite(cfg.TableauSite), refresh.WithConcurrency(cfg.TableauConcurrency), refresh.WithDeferrals(a.Deferred),
		refresh.WithStatus(a.Status),
		refresh.WithSites(func(site string) (refresh.Tableau, error) { return a.Sites.Client(site) }),
		refresh.WithSiteCredentialsAt(cfg.SiteCredentialsAt))
	a.Tracker = followup.NewTracker(a.Jobs, a.Tableau, a.Alerts, followup.WithJobLimit(cfg.JobLimit), followup.WithLogger(logger),
		followup.WithStatus(a.Status), followup.WithSites(siteClients{a.Sites}))
	lOpts := []lineage.Option{lineage.WithAliases(cfg.LineageAliases), lineage.WithAlerts(a.Alerts), lineage.WithLogger(logger)}
	if cfg.Lineage && a.DBT != nil {
		// Lineage covers every site the functions know: the default, those
		// TABLEAU_SITES lists and those the map names, each with its own
		// index.
		if sl, ok := a.Lineage.(state.SiteLineage); ok {
			var others []lineage.Site
			for _, s := range cfg.OtherSites() {
				tc, err := a.Sites.Client(s.ContentURL)
				if err != nil {
					return nil, fmt.Errorf("configuration: %w", err)
				}
				others = append(others, lineage.Site{Name: s.ContentURL, Metadata: tc, Index: sl.SiteLineage(s.ContentURL)})
			}
			lOpts = append(lOpts, lineage.WithSites(others...))
		}
		a.Planner = lineage.NewPlanner(cfg.Map, a.DBT, a.Tableau, a.Lineage, lOpts...)
		a.Builder = lineage.NewBuilder(a.Tableau, a.Lineage, lOpts...)
	} else {
		a.Planner = lineage.MapOnly(cfg.Map)
	}
	logger.Info("lineage " + cfg.LineageWhy)
	if note, old := cfg.IncrementalNote(); old {
		logger.Warn(note)
	}
	return a, nil
}

// statusOptions are what the status page and its Recorder share: the map's
// targets and objectives, the default objective, the site.
func (a *App) statusOptions() []status.Option {
	return []status.Option{status.WithMap(a.Config.Map), status.WithFreshnessSLA(a.Config.FreshnessSLA),
		status.WithSite(a.Config.TableauSite), status.WithLogger(a.Logger)}
}

// WebhookRouter is the webhook function's handler: dbt Cloud's route,
// Tableau's, and the status page's two.
func (a *App) WebhookRouter() (*webhook.Router, error) {
	dbtHook, err := webhook.NewDBT(a.Secrets, a.Refresher, a.Planner,
		webhook.WithMaxEventAge(a.Config.MaxEventAge), webhook.WithLogger(a.Logger), webhook.WithDBTCloudURL(a.Config.DBTCloudURL))
	if err != nil {
		return nil, err
	}
	tableauHook, err := webhook.NewTableau(a.Secrets, a.Store, a.Tracker, webhook.WithLogger(a.Logger))
	if err != nil {
		return nil, err
	}
	page, err := status.New(a.Secrets, a.Statuses, a.Jobs, a.statusOptions()...)
	if err != nil {
		return nil, err
	}
	return webhook.NewRouter(map[string]webhook.HTTPHandler{
		webhook.DBTRoute:     dbtHook.Handle,
		webhook.TableauRoute: tableauHook.Handle,
		status.Route:         page.HTML,
		status.JSONRoute:     page.JSON,
	}, a.Logger), nil
}

// Scheduler is the scheduled function's handler. Without a dbt Cloud
// account it only follows the Tableau jobs the webhook queued.
func (a *App) Scheduler() (*scheduler.Scheduler, error) {
	var dbt scheduler.DBT
	if a.DBT != nil {
		dbt = a.DBT
	} else {
		a.Logger.Info("scheduled path off: DBT_ACCOUNT_ID is not set; follow-ups still follow Tableau refresh jobs")
	}
	cfg := a.Config
	opts := []scheduler.Option{
		scheduler.WithPollWindow(cfg.PollWindow), scheduler.WithQueueLimit(cfg.QueueLimit, cfg.CancelStuck),
		scheduler.WithAlerts(a.Alerts), scheduler.WithFollower(a.Tracker), scheduler.WithLogger(a.Logger),
	}
	if a.Builder != nil {
		opts = append(opts, scheduler.WithIndexer(a.Builder))
	}
	return scheduler.New(dbt, a.Runs, a.Refresher, a.Planner, opts...)
}

// tableauScopes are the scopes the functions' connected-app JWT asks for:
// the default, and the data quality warnings' when they are on (nil when
// the default will do).
func tableauScopes(cfg *config.Config) []string {
	if !cfg.QualityWarnings {
		return nil
	}
	return append(tableau.DefaultScopes(), tableau.QualityWarningScopes()...)
}
