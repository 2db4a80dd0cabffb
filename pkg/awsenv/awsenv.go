// Package awsenv builds the AWS SDK configuration from the environment that
// Lambda gives a function: region, credentials and endpoint overrides, all
// in environment variables.
//
// It exists for cold starts. The SDK's config package also supports shared
// config files, profiles, SSO, web identity and instance metadata; linking
// it pulls in the STS, SSO, SSO OIDC and sign-in clients, whose package
// initialisation runs in every cold start although a Lambda function never
// uses them. The Lambda bootstrap is built with this package instead; local
// runs keep the full chain (see pkg/bridge).
package awsenv

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// Load returns the configuration the environment describes, read through
// getenv:
//
//	AWS_REGION, else AWS_DEFAULT_REGION            the region (required)
//	AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
//	AWS_SESSION_TOKEN                              the credentials, or else
//	AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
//	AWS_CONTAINER_CREDENTIALS_FULL_URI, with
//	AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)       an endpoint that serves them
//	AWS_ENDPOINT_URL                               every service's endpoint
//	AWS_ENDPOINT_URL_<SERVICE>                     one service's endpoint, e.g.
//	                                               AWS_ENDPOINT_URL_DYNAMODB,
//	                                               AWS_ENDPOINT_URL_SECRETS_MANAGER
//	AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true       ignore both
//
// These are the names and the precedence of the SDK's own environment
// configuration, so a deployment behaves the same with either. Every
// problem is reported at once, naming the variable.
func Load(getenv func(string) string) (aws.Config, error) {
	var errs []error
	cfg := aws.Config{}
	cfg.Region = strings.TrimSpace(getenv("AWS_REGION"))
	if cfg.Region == "" {
		cfg.Region = strings.TrimSpace(getenv("AWS_DEFAULT_REGION"))
	}
	if cfg.Region == "" {
		errs = append(errs, errors.New("AWS_REGION is not set (Lambda sets it)"))
	}

	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case id == "" && secret == "":
		provider, err := containerCredentials(getenv)
		if err != nil {
			errs = append(errs, err)
			break
		}
		cfg.Credentials = aws.NewCredentialsCache(provider)
	case id == "":
		errs = append(errs, errors.New("AWS_ACCESS_KEY_ID is not set, but AWS_SECRET_ACCESS_KEY is"))
	case secret == "":
		errs = append(errs, errors.New("AWS_SECRET_ACCESS_KEY is not set, but AWS_ACCESS_KEY_ID is"))
	default:
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN")))
	}

	src := Source{getenv: getenv}
	if v := strings.TrimSpace(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")); v != "" {
		ignore, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: want true or false, got %q", v))
		}
		src.ignore = &ignore
	}
	if v := strings.TrimSpace(getenv("AWS_ENDPOINT_URL")); v != "" && (src.ignore == nil || !*src.ignore) {
		if err := checkEndpoint(v); err != nil {
			errs = append(errs, fmt.Errorf("AWS_ENDPOINT_URL: %w", err))
		}
		cfg.BaseEndpoint = aws.String(v)
	}
	// The service clients look for the per-service endpoints and the ignore
	// flag in ConfigSources, through the methods of Source.
	cfg.ConfigSources = []any{src}
	if err := errors.Join(errs...); err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration from the environment: %w", err)
	}
	return cfg, nil
}

// Source answers the service clients' questions about configured endpoints,
// as the SDK's config.EnvConfig does.
type Source struct {
	getenv func(string) string
	ignore *bool
}

// GetServiceBaseEndpoint returns AWS_ENDPOINT_URL_<SERVICE> for the service
// whose SDK ID is sdkID ("DynamoDB", "Secrets Manager", "SNS").
func (s Source) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	// Not checked here: a client drops an error from this method and falls
	// back to the default endpoint, while a bad URL used as it is fails the
	// first request with the URL in the message.
	v := strings.TrimSpace(s.getenv(EndpointVariable(sdkID)))
	return v, v != "", nil
}

// GetIgnoreConfiguredEndpoints reports AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
func (s Source) GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error) {
	if s.ignore == nil {
		return false, false, nil
	}
	return *s.ignore, true, nil
}

// The addresses from which container credentials may be fetched over plain
// http, as the SDK allows them: the ECS and EKS agents' link-local
// addresses, and loopback.
var containerHosts = []netip.Addr{
	netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("169.254.170.23"),
	netip.MustParseAddr("fd00:ec2::23"),
}

// containerCredentials is the SDK's container credential provider, for
// environments that serve the role's credentials from an endpoint instead
// of putting them in the environment.
func containerCredentials(getenv func(string) string) (aws.CredentialsProvider, error) {
	var endpoint string
	if rel := strings.TrimSpace(getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")); rel != "" {
		endpoint = "http://169.254.170.2" + rel
	} else if full := strings.TrimSpace(getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")); full != "" {
		u, err := url.Parse(full)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return nil, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI: want an http(s) URL, got %q", full)
		}
		if u.Scheme == "http" && !allowedContainerHost(u.Hostname()) {
			return nil, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI: credentials are fetched over plain http only from loopback or the ECS/EKS agent addresses, not %q", u.Hostname())
		}
		endpoint = full
	} else {
		return nil, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them from the function's role), nor is AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI")
	}
	token, tokenFile := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"), getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
	return endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
		o.AuthorizationToken = token
		if tokenFile != "" {
			// Read at each fetch: the agent rotates the file.
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return "", fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
				}
				return strings.TrimSpace(string(b)), nil
			})
		}
	}), nil
}

// allowedContainerHost does not resolve names: init stays off the network,
// and "localhost" is the one name the agents use.
func allowedContainerHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.IsLoopback() || slices.Contains(containerHosts, ip.Unmap())
}

// EndpointVariable is the environment variable that overrides the endpoint
// of the service with SDK ID sdkID: "Secrets Manager" ->
// AWS_ENDPOINT_URL_SECRETS_MANAGER.
func EndpointVariable(sdkID string) string {
	return "AWS_ENDPOINT_URL_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_")
}

// checkEndpoint catches the typo that would otherwise surface as a DNS
// error on the first request, long after init.
func checkEndpoint(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL such as https://dynamodb.eu-west-1.amazonaws.com, got %q", v)
	}
	return nil
}
