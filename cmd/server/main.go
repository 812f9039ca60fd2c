// Command server serves aeserve's autoencoders over HTTP.
//
//	go run ./cmd/server                      # embedded weights, :8080
//	go run ./cmd/server --weights DIR        # weights from DIR/<model>/
//
// Every flag has an AESERVE_* environment equivalent (--max-batch is
// AESERVE_MAX_BATCH); a flag on the command line wins over the environment,
// which wins over the default. A model whose weights are missing is trained
// on startup while /healthz answers and /readyz says 503; weights that are
// present but corrupt stop the server instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/weights"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts the graceful shutdown, a second one
		// kills the process at once.
		<-ctx.Done()
		stop()
	}()
	// Logs (and flag usage) go to stderr, as README says; stdout stays free.
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "aeserve:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "aeserve:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// envPrefix turns a flag name into its environment variable: --max-batch is
// AESERVE_MAX_BATCH.
const envPrefix = "AESERVE_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

type options struct {
	addr        string
	weights     string
	trainDir    string
	data        string
	download    bool
	mirror      string
	trainEpochs int
	trainLimit  int
	logLevel    string
	debugAddr   string
	cfg         server.Config
}

// parseOptions reads flags, then the environment for every flag not given.
func parseOptions(args []string, getenv func(string) string, usage io.Writer) (*options, error) {
	o := &options{}
	c := &o.cfg
	fs := flag.NewFlagSet("aeserve", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&o.addr, "addr", ":8080", "listen address")
	fs.StringVar(&o.weights, "weights", "", "weights directory holding <model>/manifest.json; empty: the embedded weights")
	fs.StringVar(&o.trainDir, "train-dir", "weights",
		"where models missing from the embedded weights are looked for and trained into (with --weights, that directory is used)")
	fs.StringVar(&o.data, "data", "mnist", "MNIST directory, for training models whose weights are missing")
	fs.BoolVar(&o.download, "download", false, "download MNIST into --data if missing when a model must be trained (SHA-256 checked)")
	fs.StringVar(&o.mirror, "mirror", train.DefaultMirror, "MNIST mirror for --download")
	fs.IntVar(&o.trainEpochs, "train-epochs", 0, "epochs when training on startup (0: the model's preset)")
	fs.IntVar(&o.trainLimit, "train-limit", 0, "train on startup with only this many images (0: all; for smoke runs)")
	fs.IntVar(&c.Batch.MaxBatch, "max-batch", server.DefaultMaxBatch, "images per forward pass")
	fs.DurationVar(&c.Batch.MaxWait, "max-wait", server.DefaultMaxWait, "longest a free worker gathers a batch while all others are busy (0: never)")
	fs.IntVar(&c.Batch.QueueSize, "queue-size", server.DefaultQueueSize, "images queued per model half before answering 503")
	fs.IntVar(&c.Batch.Workers, "workers", server.DefaultWorkers(), "forward-pass workers per model half, each with its own graphs")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", server.DefaultMaxBodyBytes, "largest request body")
	fs.IntVar(&c.MaxImages, "max-images", server.DefaultMaxImages, "most images (or latent rows) per request")
	fs.IntVar(&c.MaxPixels, "max-pixels", server.DefaultMaxPixels, "most pixels an input PNG may declare (fit=true takes any size up to this)")
	fs.IntVar(&c.MaxRequestPixels, "max-request-pixels", server.DefaultMaxRequestPixels,
		"most pixels the input PNGs of one request may declare together (checked from their headers before decoding; at least --max-pixels)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", server.DefaultRequestTimeout, "deadline of a request, queueing included")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "http.Server ReadHeaderTimeout")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "http.Server ReadTimeout")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 0, "http.Server WriteTimeout (0: request timeout + 15s)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "http.Server IdleTimeout")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0,
		"after SIGTERM, keep accepting for this long with /readyz at 503 and every response closing its connection, "+
			"so load balancers notice and keep-alive clients reconnect (a few seconds behind a load balancer)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "longest wait for in-flight and queued requests on shutdown")
	fs.StringVar(&o.logLevel, "log-level", "info", "trace, debug, info, warn or error")
	fs.StringVar(&o.debugAddr, "debug-addr", "",
		"serve Go's runtime profiles (net/http/pprof, /debug/pprof/) on this separate address, e.g. localhost:6060; off when empty. Never expose it publicly")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: aeserve [flags]\n\nEvery flag can be set as %s<FLAG> (e.g. %s); flags win.\n\n",
			envPrefix, envName("max-batch"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		v, ok := lookup(getenv, env)
		if given[f.Name] || !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if c.Batch.MaxWait == 0 {
		// The server reads 0 as "default"; on the command line it means none.
		c.Batch.MaxWait = -1
	}
	return o, nil
}

// lookup treats an empty variable as unset, as shells make unsetting awkward.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// run is the whole program, minus signal handling and exit codes: it serves
// until ctx ends and returns nil after a clean shutdown.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseOptions(args, getenv, stdout)
	if err != nil {
		return err
	}
	lvl, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || o.logLevel == "" {
		return fmt.Errorf("%w: --log-level %q: want trace, debug, info, warn or error", errUsage, o.logLevel)
	}
	log := zerolog.New(stdout).Level(lvl).With().Timestamp().Logger()
	o.cfg.Log = log
	o.cfg.OpenAPI = aeserve.OpenAPI

	s, err := server.New(o.cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	log.Info().Str("go", runtime.Version()).Int("gomaxprocs", runtime.GOMAXPROCS(0)).
		Str("addr", o.addr).Str("weights", weightsName(o.weights)).
		Int("max_batch", o.cfg.Batch.MaxBatch).Dur("max_wait", o.cfg.Batch.MaxWait).
		Int("queue_size", o.cfg.Batch.QueueSize).Int("workers", o.cfg.Batch.Workers).
		Int64("max_body_bytes", o.cfg.MaxBodyBytes).Int("max_images", o.cfg.MaxImages).Int("max_pixels", o.cfg.MaxPixels).
		Int("max_request_pixels", o.cfg.MaxRequestPixels).
		Dur("request_timeout", o.cfg.RequestTimeout).Msg("starting")

	// Weights that exist are checked before anything listens: a corrupt file
	// must stop the server, never be trained over.
	loaded, missing, err := loadModels(o, log)
	if err != nil {
		return err
	}

	if o.debugAddr != "" {
		stop, err := serveDebug(o.debugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- s.Serve(serveCtx, ln) }()

	for _, name := range missing {
		m, err := trainModel(ctx, o, name, s, log)
		if err != nil {
			stopServing()
			serr := <-served
			if ctx.Err() != nil {
				// Stopped while training: a requested exit, not a failure.
				log.Info().Str("model", name).Msg("training interrupted by shutdown")
				return serr
			}
			return errors.Join(err, serr)
		}
		loaded = append(loaded, m)
	}
	if err := s.Load(loaded...); err != nil {
		stopServing()
		serr := <-served
		if ctx.Err() != nil {
			return serr // stopped between training and loading
		}
		return errors.Join(err, serr)
	}
	return <-served
}

// serveDebug serves the runtime profiles on a listener of their own, so that
// they are never reachable through the public address (the API router does
// not mount them either). It returns the function that stops it.
func serveDebug(addr string, log zerolog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: server.DefaultReadHeaderTimeout}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("debug listener stopped")
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("debug listening")
	return func() { srv.Close() }, nil
}

func weightsName(dir string) string {
	if dir == "" {
		return "embedded"
	}
	return dir
}

// loadModels loads every model of the weights source, and reports which of
// the models this build can train have no weights at all.
func loadModels(o *options, log zerolog.Logger) (loaded []*model.Model, missing []string, err error) {
	primary, where := fs.FS(weights.FS), "embedded weights"
	if o.weights != "" {
		primary, where = os.DirFS(o.weights), o.weights
	}
	names, err := modelNames(primary)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	for _, name := range names {
		from := where
		m, err := model.LoadFS(primary, name)
		if errors.Is(err, model.ErrNotFound) && o.weights == "" {
			// Models trained on an earlier start of a build without them.
			m, err = model.LoadDir(o.trainDir, name)
			from = o.trainDir
		}
		switch {
		case errors.Is(err, model.ErrNotFound):
			missing = append(missing, name)
			log.Warn().Str("model", name).Msg("no weights found: the model will be trained on startup")
		case err != nil:
			return nil, nil, fmt.Errorf("loading model %s from %s: %w", name, from, err)
		default:
			log.Info().Str("model", name).Str("from", from).Str("fingerprint", m.Fingerprint.String()).
				Int("epochs", m.Manifest.Training.Epochs).Msg("weights loaded")
			loaded = append(loaded, m)
		}
	}
	return loaded, missing, nil
}

// modelNames are the models this build can train and any other model with a
// manifest in fsys.
func modelNames(fsys fs.FS) ([]string, error) {
	names := slices.Clone(train.Models)
	entries, err := fs.ReadDir(fsys, ".")
	if errors.Is(err, fs.ErrNotExist) {
		return names, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || slices.Contains(names, e.Name()) {
			continue
		}
		if _, err := fs.Stat(fsys, path.Join(e.Name(), "manifest.json")); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

func trainModel(ctx context.Context, o *options, name string, s *server.Server, log zerolog.Logger) (*model.Model, error) {
	out := o.trainDir
	if o.weights != "" {
		out = o.weights
	}
	s.SetWaiting(fmt.Sprintf("training model %s on startup (progress in the server log)", name))
	cfg, err := train.Preset(name)
	if err != nil {
		return nil, err
	}
	cfg.DataDir, cfg.OutDir, cfg.Log = o.data, out, log
	if o.trainEpochs > 0 {
		cfg.Epochs = o.trainEpochs
	}
	if o.trainLimit > 0 {
		cfg.Limit, cfg.TestLimit = o.trainLimit, o.trainLimit
		cfg.ValImages = min(cfg.ValImages, o.trainLimit)
	}
	if o.download {
		s.SetWaiting(fmt.Sprintf("downloading MNIST to train model %s", name))
		if err := train.Download(ctx, o.mirror, o.data, log); err != nil {
			return nil, fmt.Errorf("training %s on startup: %w", name, err)
		}
		s.SetWaiting(fmt.Sprintf("training model %s on startup (progress in the server log)", name))
	}
	start := time.Now()
	log.Info().Str("model", name).Str("data", o.data).Str("out", out).Int("epochs", cfg.Epochs).Msg("training on startup")
	res, err := train.Run(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("training %s on startup: %w", name, err)
	}
	log.Info().Str("model", name).Str("fingerprint", res.Model.Fingerprint.String()).
		Dur("took", time.Since(start)).Msg("trained on startup")
	return res.Model, nil
}
