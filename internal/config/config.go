// Package config is the server's command line: its flags, their AESERVE_*
// environment variables and defaults. It lives apart from cmd/server so that
// other code can parse arguments exactly as the server does: the deploy
// tests parse the container args of every Kubernetes manifest with it.
//
// Every flag has an environment equivalent (--max-batch is
// AESERVE_MAX_BATCH); a flag on the command line wins over the environment,
// which wins over the default. An empty variable counts as unset.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/internal/vec"
)

// ErrUsage marks errors in the arguments themselves (the server exits 2).
var ErrUsage = errors.New("usage")

// EnvPrefix turns a flag name into its environment variable: --max-batch is
// AESERVE_MAX_BATCH.
const EnvPrefix = "AESERVE_"

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Options is everything the command line sets.
type Options struct {
	Addr        string
	MetricsAddr string // "" serves probes and metrics on Addr only
	GRPCAddr    string // "" serves no gRPC
	DebugAddr   string
	Role        server.Role
	// Models names the models to serve; nil means every model the weights
	// source holds. Names are checked for emptiness and repeats here, and
	// against the weights and training presets by the server at startup.
	Models []string
	// Int8 names the models to run at int8 rather than float32 (issue 18:
	// reduced precision, always opt-in); nil runs every model at float32.
	// Names are checked for emptiness and repeats here, against --models
	// when it is given, and against the loaded models' architectures by the
	// server at startup.
	Int8        []string
	Weights     string // "" is the embedded weights
	TrainDir    string
	Data        string
	Download    bool
	Mirror      string
	TrainEpochs int
	TrainLimit  int
	LogLevel    string
	// Kernels is the kernel path to force ("" or "auto": the fastest this
	// CPU supports); checked against the CPU as it is set.
	Kernels vec.Path
	Version bool
	Server  server.Config
}

// kernelsFlag is --kernels: a path vec knows and this CPU runs.
type kernelsFlag struct{ p *vec.Path }

func (f kernelsFlag) String() string {
	if f.p == nil || *f.p == "" {
		return "auto"
	}
	return string(*f.p)
}

func (f kernelsFlag) Set(v string) error {
	if err := vec.Check(vec.Path(v)); err != nil {
		return err
	}
	*f.p = vec.Path(v)
	return nil
}

// modelList is the --models flag: a comma-separated list, checked as it is
// set so that the error names the flag (or its variable).
type modelList struct{ names *[]string }

func (m modelList) String() string {
	if m.names == nil {
		return ""
	}
	return strings.Join(*m.names, ",")
}

func (m modelList) Set(v string) error {
	names := strings.Split(v, ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
		switch {
		case names[i] == "":
			return fmt.Errorf("empty model name in %q", v)
		case slices.Contains(names[:i], names[i]):
			return fmt.Errorf("model %q is named twice", names[i])
		}
	}
	*m.names = names
	return nil
}

// originList is the --cors-origins flag, read by server.ParseCORSOrigins.
type originList struct{ origins *[]string }

func (f originList) String() string {
	if f.origins == nil {
		return ""
	}
	return strings.Join(*f.origins, ",")
}

func (f originList) Set(v string) error {
	o, err := server.ParseCORSOrigins(v)
	if err != nil {
		return err
	}
	*f.origins = o
	return nil
}

type roleFlag struct{ r *server.Role }

func (f roleFlag) String() string {
	if f.r == nil {
		return ""
	}
	return string(*f.r)
}

func (f roleFlag) Set(v string) error {
	r, err := server.ParseRole(v)
	if err != nil {
		return err
	}
	*f.r = r
	return nil
}

// FlagSet returns the server's flags bound to o, with o's defaults set.
func FlagSet(o *Options, usage io.Writer) *flag.FlagSet {
	c := &o.Server
	o.Role = server.RoleAll
	fs := flag.NewFlagSet("aeserve", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&o.Addr, "addr", ":8080", "listen address of the API")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "",
		"also serve /metrics, /healthz and /readyz on this address, e.g. :9090, for scrapers and probes (off when empty)")
	fs.StringVar(&o.GRPCAddr, "grpc-addr", "",
		"serve the Open Inference Protocol over gRPC (with gRPC health and reflection) on this address, e.g. :8081 (off when empty)")
	fs.Var(roleFlag{&o.Role}, "role",
		"which half to serve: all (every route), encoder (loads only encoder weights; /v1/encode) or decoder (only decoder weights; /v1/decode, /v1/sample)")
	fs.Var(modelList{&o.Int8}, "int8",
		"comma-separated models to run at int8 (AVX-512 VNNI where the CPU has it) instead of float32: faster, slightly less exact; never the default")
	fs.Var(modelList{&o.Models}, "models",
		"comma-separated models to serve (default: every model the weights hold); a missing one is trained on startup with --role all and --data or --download")
	fs.StringVar(&o.Weights, "weights", "", "weights directory holding <model>/manifest.json; empty: the embedded weights")
	fs.StringVar(&o.TrainDir, "train-dir", "weights",
		"with the embedded weights, where models named in --models but not embedded are looked for and trained into")
	fs.StringVar(&o.Data, "data", "mnist", "MNIST directory, for training models named in --models whose weights are missing")
	fs.BoolVar(&o.Download, "download", false, "download MNIST into --data if missing when a model must be trained (SHA-256 checked)")
	fs.StringVar(&o.Mirror, "mirror", train.DefaultMirror, "MNIST mirror for --download")
	fs.IntVar(&o.TrainEpochs, "train-epochs", 0, "epochs when training on startup (0: the model's preset)")
	fs.IntVar(&o.TrainLimit, "train-limit", 0, "train on startup with only this many images (0: all; for smoke runs)")
	fs.IntVar(&c.Batch.MaxBatch, "max-batch", server.DefaultMaxBatch, "images per forward pass")
	fs.DurationVar(&c.Batch.MaxWait, "max-wait", server.DefaultMaxWait, "longest a free worker gathers a batch while all others are busy (0: never)")
	fs.IntVar(&c.Batch.QueueSize, "queue-size", server.DefaultQueueSize, "images queued per model half before answering 503")
	fs.IntVar(&c.Batch.Workers, "workers", server.DefaultWorkers(), "forward-pass workers per model half, each with its own graphs")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", server.DefaultMaxBodyBytes, "largest request body")
	fs.IntVar(&c.MaxImages, "max-images", server.DefaultMaxImages, "most images (or latent rows) per request")
	fs.IntVar(&c.MaxPixels, "max-pixels", server.DefaultMaxPixels, "most pixels an input image may declare (fit=true takes any size up to this)")
	fs.IntVar(&c.MaxRequestPixels, "max-request-pixels", server.DefaultMaxRequestPixels,
		"most pixels the input images of one request may declare together (checked from their headers before decoding; at least --max-pixels)")
	fs.Int64Var(&c.DecodeBudget, "decode-budget", server.DefaultDecodeBudget,
		"most pixels decoded at once by all requests together, which bounds the memory decoding takes (at least --max-pixels)")
	fs.DurationVar(&c.DecodeWait, "decode-wait", server.DefaultDecodeWait,
		"longest an image waits for room in --decode-budget before its request answers 503 with Retry-After")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", server.DefaultRequestTimeout, "deadline of a request, queueing included")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "http.Server ReadHeaderTimeout")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "http.Server ReadTimeout")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 0, "http.Server WriteTimeout (0: request timeout + 15s)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "http.Server IdleTimeout")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0,
		"after SIGTERM, keep accepting for this long with /readyz at 503 and every response closing its connection, "+
			"so load balancers notice and keep-alive clients reconnect (a few seconds behind a load balancer)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "longest wait for in-flight and queued requests on shutdown")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "",
		"serve the API and gRPC over TLS with this PEM certificate (chain) `FILE`, with --tls-key; both are read again when "+
			"either changes (a bad pair then keeps the old one). --metrics-addr stays plain HTTP. Off when empty")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "the PEM private key `FILE` of --tls-cert")
	fs.StringVar(&c.AuthTokensFile, "auth-tokens", "",
		"require Authorization: Bearer <token> on /v1, /v2 and gRPC inference, with the tokens of this `FILE` "+
			"(one a line; blank lines and # comments skipped; read again when it changes). /healthz, /readyz, /metrics, "+
			"/openapi.yaml, /v2/health/* and gRPC health stay open. Off when empty")
	fs.Var(originList{&c.CORSOrigins}, "cors-origins",
		"comma-separated `LIST` of origins (scheme://host[:port]) whose browser pages may call the API (CORS), or * for any page; off when empty")
	fs.StringVar(&o.LogLevel, "log-level", "info", "trace, debug, info, warn or error (probes and scrapes are logged at debug)")
	fs.StringVar(&o.DebugAddr, "debug-addr", "",
		"serve Go's runtime profiles (net/http/pprof, /debug/pprof/) on this separate address, e.g. localhost:6060; off when empty. Never expose it publicly")
	fs.Var(kernelsFlag{&o.Kernels}, "kernels",
		"kernel `PATH`: auto (the fastest this CPU supports), avx512, avx2 or go (portable); for comparing paths, or to rule one out")
	fs.BoolVar(&o.Version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: aeserve [flags]\n\nEvery flag can be set as %s<FLAG> (e.g. %s); flags win.\n\n",
			EnvPrefix, EnvName("max-batch"))
		fs.PrintDefaults()
	}
	return fs
}

// Parse reads flags, then the environment for every flag not given. Errors
// wrap ErrUsage, except flag.ErrHelp for -h.
func Parse(args []string, getenv func(string) string, usage io.Writer) (*Options, error) {
	o, _, err := parse(args, getenv, usage)
	return o, err
}

func parse(args []string, getenv func(string) string, usage io.Writer) (*Options, *flag.FlagSet, error) {
	o := &Options{}
	fs := FlagSet(o, usage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		v := getenv(env)
		if given[f.Name] || v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if (o.Server.TLSCertFile == "") != (o.Server.TLSKeyFile == "") {
		return nil, nil, fmt.Errorf("%w: --tls-cert (%s) and --tls-key (%s) go together: give both, or neither",
			ErrUsage, EnvName("tls-cert"), EnvName("tls-key"))
	}
	if o.Server.Batch.MaxWait == 0 {
		// The server reads 0 as "default"; on the command line it means none.
		o.Server.Batch.MaxWait = -1
	}
	if o.Server.DecodeWait == 0 {
		o.Server.DecodeWait = -1 // likewise: no wait, 503 at once
	}
	if o.Models != nil {
		for _, n := range o.Int8 {
			if !slices.Contains(o.Models, n) {
				return nil, nil, fmt.Errorf("%w: --int8 names model %q, which --models (%s) does not serve", ErrUsage, n, strings.Join(o.Models, ","))
			}
		}
	}
	o.Server.Role = o.Role
	return o, fs, nil
}
