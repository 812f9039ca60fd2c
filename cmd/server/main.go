// Command server serves aeserve's autoencoders over HTTP.
//
//	go run ./cmd/server                      # embedded weights, :8080
//	go run ./cmd/server --weights DIR        # weights from DIR/<model>/
//
// The flags are internal/config's. It serves every model of its weights, or
// those --models names; --role encoder or decoder loads and serves only that
// half. A named model whose weights are missing is trained on startup (only
// with --role all and MNIST at hand) while /healthz answers and /readyz says
// 503; weights that are present but corrupt stop the server instead. Exit
// status: 0 after a clean shutdown, 2 for a usage error (bad flag, unknown
// model name, a TLS certificate and key that do not load, a token file that
// cannot be read or holds no tokens), 1 for anything else.
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

	"github.com/prometheus/common/version"
	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve"
	"github.com/aeserve/aeserve/internal/config"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/internal/train"
	"github.com/aeserve/aeserve/internal/vec"
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
	// Logs (and flag usage) go to stderr, as README says; stdout carries
	// only what was asked for (--version).
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, config.ErrUsage):
		fmt.Fprintln(os.Stderr, "aeserve:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "aeserve:", err)
		os.Exit(1)
	}
}

func init() {
	// A build without -ldflags (go run, go build) still says what it is.
	if version.Version == "" {
		version.Version = "dev"
	}
}

// run is the whole program, minus signal handling and exit codes: it serves
// until ctx ends and returns nil after a clean shutdown.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := config.Parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.Version {
		_, err := fmt.Fprintln(stdout, version.Print("aeserve"))
		return err
	}
	lvl, err := zerolog.ParseLevel(o.LogLevel)
	if err != nil || o.LogLevel == "" {
		return fmt.Errorf("%w: --log-level %q: want trace, debug, info, warn or error", config.ErrUsage, o.LogLevel)
	}
	if err := vec.Use(o.Kernels); err != nil {
		return fmt.Errorf("%w: --kernels: %w", config.ErrUsage, err)
	}
	log := zerolog.New(stderr).Level(lvl).With().Timestamp().Logger()
	o.Server.Log = log
	o.Server.OpenAPI = aeserve.OpenAPI

	s, err := server.New(o.Server)
	if err != nil {
		return fmt.Errorf("%w: %w", config.ErrUsage, err)
	}
	c := o.Server
	log.Info().Str("version", version.Version).Str("revision", version.GetRevision()).
		Str("go", runtime.Version()).Int("gomaxprocs", runtime.GOMAXPROCS(0)).Str("kernels", string(vec.Active())).
		Str("addr", o.Addr).Str("metrics_addr", o.MetricsAddr).Str("grpc_addr", o.GRPCAddr).Str("role", string(o.Role)).
		Strs("models", o.Models).Str("weights", weightsName(o.Weights)).
		Int("max_batch", c.Batch.MaxBatch).Stringer("max_wait", c.Batch.MaxWait).
		Int("queue_size", c.Batch.QueueSize).Int("workers", c.Batch.Workers).
		Int64("max_body_bytes", c.MaxBodyBytes).Int("max_images", c.MaxImages).Int("max_pixels", c.MaxPixels).
		Int("max_request_pixels", c.MaxRequestPixels).
		Stringer("request_timeout", c.RequestTimeout).Stringer("drain_delay", c.DrainDelay).Stringer("shutdown_timeout", c.ShutdownTimeout).
		Bool("tls", c.TLSCertFile != "").Bool("auth", c.AuthTokensFile != "").Strs("cors_origins", c.CORSOrigins).
		Msg("starting")

	// Weights that exist are checked, and what is missing is judged, before
	// anything listens: a corrupt file or a model that cannot be had must
	// stop the server, never be trained over or skipped.
	loaded, missing, err := loadModels(o, log)
	if err != nil {
		return err
	}

	if o.DebugAddr != "" {
		stop, err := serveDebug(o.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	lns := server.Listeners{API: ln}
	for _, l := range []struct {
		addr, flag string
		dst        *net.Listener
	}{{o.MetricsAddr, "--metrics-addr", &lns.Ops}, {o.GRPCAddr, "--grpc-addr", &lns.GRPC}} {
		if l.addr == "" {
			continue
		}
		if *l.dst, err = net.Listen("tcp", l.addr); err != nil {
			for _, open := range []net.Listener{lns.API, lns.Ops, lns.GRPC} {
				if open != nil {
					open.Close()
				}
			}
			return fmt.Errorf("%s: %w", l.flag, err)
		}
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- s.ServeAll(serveCtx, lns) }()

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
		if slices.Contains(o.Int8, name) {
			if err := m.UseInt8(); err != nil {
				stopServing()
				return errors.Join(err, <-served)
			}
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

// loadModels loads the models to serve (--models, or every model of the
// weights source), each with only the halves of the server's role, and
// returns the names of those that must be trained first. It fails, before
// anything listens, on corrupt weights and on a missing model that cannot be
// trained here, naming the flag that fixes it; unknown names are usage
// errors.
func loadModels(o *config.Options, log zerolog.Logger) (loaded []*model.Model, missing []string, err error) {
	primary, where := fs.FS(weights.FS), "the embedded weights"
	if o.Weights != "" {
		primary, where = os.DirFS(o.Weights), o.Weights
	}
	held, err := modelNames(primary)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	names := o.Models
	if names == nil {
		if len(held) == 0 {
			return nil, nil, fmt.Errorf("%s hold no models: point --weights at a directory of trained models, "+
				"or name the models to train on startup with --models (trainable: %s)", where, strings.Join(train.Models, ", "))
		}
		names = held
	}
	halves := o.Role.Halves()
	for _, name := range names {
		from := where
		m, err := model.LoadFS(primary, name, halves...)
		if errors.Is(err, model.ErrNotFound) && o.Weights == "" {
			// Models trained on an earlier start of a build without them.
			m, err = model.LoadDir(o.TrainDir, name, halves...)
			from = o.TrainDir
		}
		switch {
		case err == nil && len(m.Loaded()) == 0 && o.Models != nil:
			return nil, nil, fmt.Errorf("model %s is a %s with no %s stage: serve it from a --role all server, or leave it out of --models",
				name, m.Arch.Task, o.Role)
		case err == nil && len(m.Loaded()) == 0:
			// A classifier has no halves: not for an encoder or decoder process.
			log.Info().Str("model", name).Str("task", string(m.Arch.Task)).Str("role", string(o.Role)).
				Msg("model not served: it has no stage for this role")
		case err == nil:
			hs := make([]string, 0, len(halves))
			for _, h := range m.Loaded() {
				hs = append(hs, string(h))
			}
			log.Info().Str("model", name).Str("from", from).Str("fingerprint", m.Fingerprint.String()).
				Strs("stages", hs).Int("epochs", m.Manifest.Training.Epochs).Msg("weights loaded")
			loaded = append(loaded, m)
		case !errors.Is(err, model.ErrNotFound):
			return nil, nil, fmt.Errorf("loading model %s from %s: %w", name, from, err)
		case !slices.Contains(train.Models, name):
			have := "none"
			if len(held) > 0 {
				have = strings.Join(held, ", ")
			}
			return nil, nil, fmt.Errorf("%w: --models: unknown model %q: %s hold %s, and this build trains %s",
				config.ErrUsage, name, where, have, strings.Join(train.Models, ", "))
		case o.Role != server.RoleAll:
			return nil, nil, fmt.Errorf("model %s has no weights in %s, and a --role %s server never trains: "+
				"train it with cmd/train (or a --role all server) and point --weights at the result", name, where, o.Role)
		case !o.Download:
			if derr := train.HasData(o.Data); derr != nil {
				return nil, nil, fmt.Errorf("model %s has no weights in %s; to train it on startup, point --data at the MNIST files "+
					"or add --download (%w)", name, where, derr)
			}
			fallthrough
		default:
			missing = append(missing, name)
			log.Warn().Str("model", name).Msg("no weights found: the model will be trained on startup")
		}
	}
	if len(loaded)+len(missing) == 0 {
		return nil, nil, fmt.Errorf("none of the models (%s) has a stage for --role %s", strings.Join(names, ", "), o.Role)
	}
	if err := useInt8(o, names, loaded, missing, log); err != nil {
		return nil, nil, err
	}
	return loaded, missing, nil
}

// useInt8 switches the models named in --int8 to int8 inference (models
// trained on startup are switched once trained), after checking every name:
// a model this server does not serve, or one whose architecture has no int8
// path, is a usage error.
func useInt8(o *config.Options, names []string, loaded []*model.Model, missing []string, log zerolog.Logger) error {
	archOf := map[string]*model.Arch{}
	for _, m := range loaded {
		archOf[m.Name] = m.Arch
	}
	for _, name := range missing {
		if cfg, err := train.Preset(name); err == nil {
			archOf[name] = cfg.Arch
		}
	}
	for _, name := range o.Int8 {
		if !slices.Contains(names, name) {
			return fmt.Errorf("%w: --int8: unknown model %q: this server serves %s", config.ErrUsage, name, strings.Join(names, ", "))
		}
		a := archOf[name]
		if a == nil {
			continue // no stage for this role: not served here
		}
		if !a.Int8Inference() {
			var have []string
			for _, n := range names {
				if archOf[n] != nil && archOf[n].Int8Inference() {
					have = append(have, n)
				}
			}
			return fmt.Errorf("%w: --int8: model %s (architecture %s) has no int8 path: int8 needs every layer but the last to read values ≥ 0, "+
				"which a linear or Gaussian code is not; of the models served, these have one: %s", config.ErrUsage, name, a.Name, strings.Join(have, ", "))
		}
	}
	for _, m := range loaded {
		if slices.Contains(o.Int8, m.Name) {
			if err := m.UseInt8(); err != nil {
				return err
			}
			log.Info().Str("model", m.Name).Bool("vnni", vec.Int8Accelerated()).Msg("int8 inference (--int8)")
		}
	}
	return nil
}

// modelNames are the models with a manifest in fsys, sorted.
func modelNames(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		// Not e.IsDir(): a model directory may be a symlink (KServe's storage
		// initializer links file:// and some pvc:// models into /mnt/models),
		// and Stat follows it.
		if _, err := fs.Stat(fsys, path.Join(e.Name(), "manifest.json")); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

func trainModel(ctx context.Context, o *config.Options, name string, s *server.Server, log zerolog.Logger) (*model.Model, error) {
	out := o.TrainDir
	if o.Weights != "" {
		out = o.Weights
	}
	s.SetWaiting(fmt.Sprintf("training model %s on startup (progress in the server log)", name))
	cfg, err := train.Preset(name)
	if err != nil {
		return nil, err
	}
	cfg.DataDir, cfg.OutDir, cfg.Log = o.Data, out, log
	if o.TrainEpochs > 0 {
		cfg.Epochs = o.TrainEpochs
	}
	if o.TrainLimit > 0 {
		cfg.Limit, cfg.TestLimit = o.TrainLimit, o.TrainLimit
		cfg.ValImages = min(cfg.ValImages, o.TrainLimit)
	}
	if o.Download {
		s.SetWaiting(fmt.Sprintf("downloading MNIST to train model %s", name))
		if err := train.Download(ctx, o.Mirror, o.Data, log); err != nil {
			return nil, fmt.Errorf("training %s on startup: %w", name, err)
		}
		s.SetWaiting(fmt.Sprintf("training model %s on startup (progress in the server log)", name))
	}
	start := time.Now()
	log.Info().Str("model", name).Str("data", o.Data).Str("out", out).Int("epochs", cfg.Epochs).Msg("training on startup")
	res, err := train.Run(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("training %s on startup: %w", name, err)
	}
	log.Info().Str("model", name).Str("fingerprint", res.Model.Fingerprint.String()).
		Stringer("took", time.Since(start).Round(time.Second)).Msg("trained on startup")
	return res.Model, nil
}
