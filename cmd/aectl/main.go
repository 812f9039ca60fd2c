// Command aectl talks to an aeserve server from the shell: it encodes digits
// into latents, decodes latents back into digits, reconstructs, denoises and
// classifies digits, and lists the server's models.
//
//	aectl encode digit.png > digit.lat        # binary latent (6,287 bytes with conv)
//	aectl decode digit.lat > out.png
//	aectl reconstruct a.png b.png -o out/     # out/a.reconstructed.png, out/b.reconstructed.png
//	aectl denoise noisy.png > clean.png
//	aectl classify --denoise noisy.png        # 7 (p=0.998)
//	aectl models
//
// The server is --server URL, or $AECTL_SERVER, or http://localhost:8080.
// With --v2 every command speaks the Open Inference Protocol (V2) instead of
// /v1, over REST at --server or, with --grpc ADDR, over gRPC; it reads and
// writes the same files (see v2.go). For a server run with --auth-tokens,
// --token (or $AECTL_TOKEN, or --token-file) is sent as a bearer token; an
// https:// server is checked against the system's roots, or --ca's, as is
// gRPC with --grpc-tls. A file argument of - is stdin, and -o -
// (or no -o) is stdout. Every command has --help. Exit status: 0 on success,
// 1 when the server, the network or a file fails (with a one-line message on
// stderr), 2 for a usage error.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/api/oip"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// Defaults of the flags every command takes.
const (
	envServer      = "AECTL_SERVER"
	envToken       = "AECTL_TOKEN"
	defaultServer  = "http://localhost:8080"
	defaultTimeout = time.Minute
)

// service is what the commands ask of a server. *api.Client speaks the /v1
// HTTP API and *v2Service the Open Inference Protocol, chosen in
// newService, without touching the commands.
type service interface {
	Encode(ctx context.Context, opts api.EncodeOptions, pngs ...[]byte) (*api.Latent, error)
	Decode(ctx context.Context, l *api.Latent, opts api.DecodeOptions) ([][]byte, error)
	Reconstruct(ctx context.Context, opts api.ImageOptions, pngs ...[]byte) ([][]byte, error)
	Denoise(ctx context.Context, opts api.ImageOptions, pngs ...[]byte) ([][]byte, error)
	Classify(ctx context.Context, opts api.ClassifyOptions, pngs ...[]byte) (*api.Classifications, error)
	Models(ctx context.Context) (*api.ModelList, error)
	Model(ctx context.Context, name string) (*api.ModelInfo, error)
}

var _ service = (*api.Client)(nil)

// newService connects the commands to the server as the common flags say.
func newService(cm *common) (service, error) {
	if cm.v2 || cm.grpc != "" {
		return newV2Service(cm)
	}
	return &api.Client{BaseURL: cm.server, HTTP: cm.http, Token: cm.token}, nil
}

// env is the outside world of one run.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	server         string // --server given before the command, or the environment's, or the default
	v2             bool   // --v2 given before the command
	grpc           string // --grpc given before the command
	// --token, --token-file, --ca and --grpc-tls given before the command
	// (the token may be the environment's: tokenFromEnv).
	token, tokenFile, ca string
	tokenFromEnv         bool
	grpcTLS              bool
}

// command is one subcommand: its help, its flags and what it does.
type command struct {
	name    string
	args    string // after "aectl NAME [flags]" in the usage line
	summary string // one line, for aectl help
	help    string // the rest of aectl NAME --help, before the flags
	// flags registers the command's own flags on fs and returns the
	// function that does the work once they are parsed.
	flags func(fs *flag.FlagSet) func(e *env, cm *common, files []string) error
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// errHelp asks for the command's usage on stdout and exit status 0.
var errHelp = errors.New("help requested")

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// run is the whole program: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, server: defaultServer}
	if s := getenv(envServer); s != "" {
		e.server = s
	}
	if t := getenv(envToken); t != "" {
		e.token, e.tokenFromEnv = t, true
	}
	// Flags before the command: only the common ones, and help.
	top := flag.NewFlagSet("aectl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	top.StringVar(&e.server, "server", e.server, "")
	top.BoolVar(&e.v2, "v2", false, "")
	top.StringVar(&e.grpc, "grpc", "", "")
	top.StringVar(&e.token, "token", e.token, "")
	top.StringVar(&e.tokenFile, "token-file", "", "")
	top.StringVar(&e.ca, "ca", "", "")
	top.BoolVar(&e.grpcTLS, "grpc-tls", false, "")
	err := top.Parse(args)
	top.Visit(func(f *flag.Flag) {
		if f.Name == "token" {
			e.tokenFromEnv = false
		}
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "aectl: %v\n\n", err)
		printUsage(stderr)
		return 2
	}
	args = top.Args()
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	name, args := args[0], args[1:]
	if name == "help" {
		return help(e, args)
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "aectl: unknown command %q\n\n", name)
		printUsage(stderr)
		return 2
	}
	err = c.run(e, args)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		c.printUsage(stdout)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "aectl: %s: %v\nRun 'aectl %s --help' for usage.\n", c.name, ue, c.name)
		return 2
	default:
		fmt.Fprintln(stderr, "aectl:", describe(c.name, err))
		return 1
	}
}

func help(e *env, args []string) int {
	switch len(args) {
	case 0:
		printUsage(e.stdout)
		return 0
	case 1:
		if c := lookup(args[0]); c != nil {
			c.printUsage(e.stdout)
			return 0
		}
		fmt.Fprintf(e.stderr, "aectl: help: unknown command %q\n\n", args[0])
	default:
		fmt.Fprintf(e.stderr, "aectl: help takes one command, got %d\n\n", len(args))
	}
	printUsage(e.stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `aectl talks to an aeserve server: it encodes digits (28×28 PNGs, white on black
as in MNIST) into latent codes, decodes latents back into digits, reconstructs,
denoises and classifies digits, draws new ones from a variational autoencoder,
and lists the server's models.

usage: aectl [--server URL] [--v2 | --grpc ADDR] COMMAND [flags] [FILE...]
       (and [--token TOKEN | --token-file FILE] [--ca FILE] [--grpc-tls])

commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `  %-12s this text, or a command's: aectl help COMMAND

Every command takes --server URL (default $%s, or %s),
--v2 to speak the Open Inference Protocol (V2) instead of /v1, --grpc ADDR to
speak it over gRPC at ADDR (host:port, plaintext unless --grpc-tls), and
--timeout. Over V2 the commands read and write the same files as over /v1;
--server still lists the models for models --v2 and finds the model of a
binary latent for decode.

For a server run with --auth-tokens, --token TOKEN (default $%s) or
--token-file FILE (its first token line) is sent as a bearer token. An
https:// --server, and gRPC with --grpc-tls, must have a certificate the
system trusts, or one signed by the PEM certificates of --ca FILE.

A FILE of - is stdin; -o - (or no -o) is stdout.
Run 'aectl COMMAND --help' for a command's flags and examples.

Exit status: 0 on success, 1 when the server, the network or a file fails,
2 for a usage error.
`, "help", envServer, defaultServer, envToken)
}

func (c *command) printUsage(w io.Writer) {
	fs := c.flagSet(&env{server: defaultServer}, new(common))
	c.flags(fs)
	fmt.Fprintf(w, "%s\n\n%s\n\nflags:\n", strings.TrimSpace("usage: aectl "+c.name+" [flags] "+c.args), strings.TrimSpace(c.help))
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// run parses the command's flags and runs it.
func (c *command) run(e *env, args []string) error {
	cm := new(common)
	fs := c.flagSet(e, cm)
	do := c.flags(fs)
	files, err := parse(e, fs, cm, args)
	if err != nil {
		return err
	}
	if cl, ok := cm.svc.(io.Closer); ok {
		defer cl.Close()
	}
	return do(e, cm, files)
}

// common holds the flags every command takes, and what parse makes of them.
type common struct {
	server    string
	v2        bool
	grpc      string // host:port of the gRPC listener; implies v2
	grpcTLS   bool
	token     string // sent as a bearer token if not empty
	tokenFile string
	ca        string // PEM file of the certificates to trust instead of the system's
	timeout   time.Duration

	http *http.Client // nil: http.DefaultClient
	tls  *tls.Config  // the client side of HTTPS and gRPC TLS
	svc  service
}

// flagSet is a new FlagSet for c with the common flags.
func (c *command) flagSet(e *env, cm *common) *flag.FlagSet {
	fs := flag.NewFlagSet("aectl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors, and --help goes to stdout
	fs.StringVar(&cm.server, "server", e.server, "the server's base `URL` (env "+envServer+")")
	fs.BoolVar(&cm.v2, "v2", e.v2, "speak the Open Inference Protocol (V2) at --server instead of /v1")
	fs.StringVar(&cm.grpc, "grpc", e.grpc, "speak V2 over gRPC at `ADDR` (host:port, plaintext unless --grpc-tls); implies --v2")
	fs.BoolVar(&cm.grpcTLS, "grpc-tls", e.grpcTLS, "speak gRPC over TLS (trusting the system's roots, or --ca's)")
	fs.StringVar(&cm.token, "token", e.token, "send this bearer `TOKEN`, for a server run with --auth-tokens (env "+envToken+")")
	fs.StringVar(&cm.tokenFile, "token-file", e.tokenFile, "send the first token line of this `FILE` as the bearer token")
	fs.StringVar(&cm.ca, "ca", e.ca, "trust the PEM certificates of this `FILE` (instead of the system's) for https:// and --grpc-tls")
	fs.DurationVar(&cm.timeout, "timeout", defaultTimeout, "give up after this long (0: never)")
	return fs
}

// parse parses args with fs, allowing flags after the files
// (aectl reconstruct a.png b.png -o out/) as well as before, and returns
// the files. After --, everything is a file.
func parse(e *env, fs *flag.FlagSet, cm *common, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag stops at the first non-flag, or after "--", which it drops.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			files = append(files, rest...)
			break
		}
		files = append(files, rest[0])
		args = rest[1:]
	}
	if cm.timeout < 0 {
		return nil, usagef("--timeout %v is negative", cm.timeout)
	}
	u, err := url.Parse(cm.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q: want a URL such as %s", cm.server, defaultServer)
	}
	if cm.grpc != "" {
		if host, port, err := net.SplitHostPort(cm.grpc); err != nil || port == "" || strings.ContainsAny(host, "/") {
			return nil, usagef("--grpc %q: want host:port, such as localhost:8081", cm.grpc)
		}
	} else if cm.grpcTLS {
		return nil, usagef("--grpc-tls needs --grpc ADDR")
	}
	if err := cm.credentials(e, fs); err != nil {
		return nil, err
	}
	if cm.svc, err = newService(cm); err != nil {
		return nil, usagef("--grpc %s: %v", cm.grpc, err)
	}
	return files, nil
}

// credentials reads --token-file and --ca. A --token given as a flag
// (before or after the command) with --token-file is a usage error;
// $AECTL_TOKEN gives way to --token-file.
func (cm *common) credentials(e *env, fs *flag.FlagSet) error {
	if cm.tokenFile != "" {
		explicit := cm.token != "" && !(e.tokenFromEnv && cm.token == e.token)
		fs.Visit(func(f *flag.Flag) {
			explicit = explicit || f.Name == "token"
		})
		if explicit {
			return usagef("give --token or --token-file, not both")
		}
		tok, err := readToken(cm.tokenFile)
		if err != nil {
			return err
		}
		cm.token = tok
	}
	if strings.ContainsAny(cm.token, " \t\r\n") {
		return usagef("--token: a bearer token has no spaces or line breaks")
	}
	if cm.ca != "" {
		b, err := os.ReadFile(cm.ca)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("--ca %s: no PEM certificates in it", cm.ca)
		}
		cm.tls = &tls.Config{RootCAs: pool}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cm.tls
		cm.http = &http.Client{Transport: t}
	}
	return nil
}

// readToken is the first token line of a file: blank lines and lines
// starting with # are skipped, as in the server's token file.
func readToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if tok := strings.TrimSpace(string(line)); tok != "" && !strings.HasPrefix(tok, "#") {
			return tok, nil
		}
	}
	return "", fmt.Errorf("--token-file %s holds no token", file)
}

// context is the command's context: bounded by --timeout.
func (cm *common) context() (context.Context, context.CancelFunc) {
	if cm.timeout == 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), cm.timeout)
}

// serverError is a failure to talk to the server, or the server's answer: it
// knows which server, for the message.
type serverError struct {
	server  string // the URL, or the gRPC address
	timeout time.Duration
	err     error
	grpc    bool
}

func (e *serverError) Error() string { return e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }

func (cm *common) wrap(err error) error {
	if err == nil {
		return nil
	}
	server := cm.server
	if cm.grpc != "" {
		server = cm.grpc
	}
	return &serverError{server: server, timeout: cm.timeout, err: err, grpc: cm.grpc != ""}
}

// describe turns an error into the one line after "aectl: ", with a hint
// for a server certificate that is not trusted.
func describe(cmd string, err error) string {
	msg := describeErr(cmd, err)
	if strings.Contains(msg, "certificate signed by unknown authority") {
		msg += " (for a server's own certificate, give its CA with --ca FILE)"
	}
	return msg
}

func describeErr(cmd string, err error) string {
	var se *serverError
	if !errors.As(err, &se) {
		return cmd + ": " + err.Error()
	}
	var p *api.Problem
	if errors.As(err, &p) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return cmd + ": " + p.Error() + authHint(err)
	}
	v2msg, isV2 := describeV2(err, se.server, se.grpc)
	if isV2 && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		if strings.HasPrefix(v2msg, "cannot reach ") {
			return v2msg
		}
		return cmd + ": " + v2msg + authHint(err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg := fmt.Sprintf("%s: no answer from %s within %v (--timeout)", cmd, se.server, se.timeout)
		if errors.As(err, &p) {
			msg += "; last answer: " + p.Error()
		} else if isV2 {
			msg += "; last answer: " + v2msg
		}
		return msg
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Sprintf("cannot reach %s: no such host %s", se.server, dns.Name)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Sprintf("cannot reach %s: %v", se.server, innermost(op))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Sprintf("%s: %s closed the connection without an answer", cmd, se.server)
		}
		return fmt.Sprintf("%s: talking to %s: %v", cmd, se.server, innermost(ue))
	}
	return cmd + ": " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), "api: "), "oip: ")
}

// authHint says how to send a token, after a server's 401 (or gRPC's
// Unauthenticated).
func authHint(err error) string {
	var p *api.Problem
	var e *oip.Error
	if (errors.As(err, &p) && p.Status == http.StatusUnauthorized) ||
		(errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Code == codes.Unauthenticated)) {
		return " (give the token with --token, --token-file or $" + envToken + ")"
	}
	return ""
}

// innermost is the last error of a chain: "connection refused" rather than
// "dial tcp 127.0.0.1:9: connect: connection refused".
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
