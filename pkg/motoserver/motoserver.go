// Package motoserver starts moto_server, an emulator of the AWS wire
// protocols, on a free loopback port so that tests can run the real AWS SDK
// against DynamoDB and Secrets Manager without an AWS account.
//
// moto_server answers requests on parallel threads and does not make a
// DynamoDB conditional write atomic: two PutItems racing for one key can
// both see it free and both succeed, which real DynamoDB never allows. So
// the tests do not talk to it directly: Start puts an in-process proxy in
// front of it that passes DynamoDB requests on one at a time (see
// serialise.go), and the exactly-once tests test our conditions, not the
// emulator's threads. StartFaults adds DynamoDB's failures on top.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Server is a running moto_server process behind its serialising proxy.
type Server struct {
	// URL is the endpoint to give the SDK, e.g. http://127.0.0.1:41234: the
	// proxy, which serialises DynamoDB requests.
	URL string
	// motoURL is moto_server itself.
	motoURL string
	cmd     *exec.Cmd
	front   *front
}

// Start runs moto_server on a free loopback port, waits until it answers,
// and starts the serialising proxy whose address is URL. The binary is
// looked up on PATH; the machine image provides it (Python package
// moto[server], 5.x).
func Start(ctx context.Context) (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server not found on PATH (it is the Python package moto[server], 5.x; the machine image provides it): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	// Its own process group, so Stop also ends the Python children it forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{motoURL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if s.front, err = startFront(s.motoURL); err != nil {
		s.Stop()
		return nil, err
	}
	s.URL = s.front.url
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.motoURL+"/moto-api/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("moto_server at %s did not answer: %w", s.motoURL, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the proxy and the process.
func (s *Server) Stop() {
	if s.front != nil {
		s.front.close()
	}
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}

// AWSConfig returns an SDK configuration that sends every service to the
// emulator with dummy credentials, the same way AWS_ENDPOINT_URL does.
func (s *Server) AWSConfig(ctx context.Context) (aws.Config, error) {
	return awsConfig(ctx, s.URL)
}

func awsConfig(ctx context.Context, endpoint string) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing", Source: "motoserver"}, nil
		})),
	)
}

// SetEnv points the standard SDK environment at the emulator, for code under
// test that builds its own configuration from the environment.
func (s *Server) SetEnv(setenv func(key, value string)) {
	setenv("AWS_ENDPOINT_URL", s.URL)
	setenv("AWS_REGION", "us-east-1")
	setenv("AWS_ACCESS_KEY_ID", "testing")
	setenv("AWS_SECRET_ACCESS_KEY", "testing")
	setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("find a free port: not a TCP address")
	}
	return addr.Port, nil
}

// Main is the body of a TestMain for packages whose tests need the emulator:
// it starts one server, hands it to setup, runs the tests and stops it. A
// missing or broken moto_server fails the package with one readable line
// instead of failing each test alike.
func Main(m interface{ Run() int }, setup func(*Server)) int {
	s, err := Start(context.Background())
	if err != nil {
		fmt.Println("FAIL motoserver:", err)
		return 1
	}
	defer s.Stop()
	setup(s)
	return m.Run()
}
