package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// DefaultMirror is a public copy of the original MNIST files; any mirror with the same four
// files works, since every download is checked against Sums.
const DefaultMirror = "https://ossci-datasets.s3.amazonaws.com/mnist/"

// Sums are the SHA-256 sums of the four original MNIST files (as ../shared/mnist/SHA256SUMS).
var Sums = map[string]string{
	"t10k-images-idx3-ubyte.gz":  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
	"t10k-labels-idx1-ubyte.gz":  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
	"train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
	"train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
}

// The largest file is under 10 MB; the cap stops a misbehaving mirror from filling the disk.
const maxDownloadBytes = 64 << 20

// ErrChecksum is matched (errors.Is) by every *ChecksumError.
var ErrChecksum = errors.New("checksum mismatch")

// ChecksumError reports a file whose SHA-256 is not the one in Sums.
type ChecksumError struct {
	File string // base name
	Want string
	Got  string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: got %s, want %s", e.File, e.Got, e.Want)
}

func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// StatusError is a mirror answering something other than 200 OK.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string // e.g. "404 Not Found"
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: unexpected status %s", e.URL, e.Status)
}

// defaultClient bounds each stage separately, because a single overall timeout long enough for
// 10 MB on a slow link would let a mirror that never answers hang for just as long.
var defaultClient = &http.Client{
	Timeout: 10 * time.Minute,
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	},
}

// Option configures Download.
type Option func(*downloadOptions)

type downloadOptions struct {
	client *http.Client
}

// WithHTTPClient makes Download use c instead of the package default (10 min overall timeout).
func WithHTTPClient(c *http.Client) Option {
	return func(o *downloadOptions) { o.client = c }
}

// Download fetches into dir each MNIST file that is missing or whose checksum is wrong, from
// mirror (DefaultMirror if empty) + file name. Each file is streamed to a temporary file in dir,
// verified and then renamed into place, so dir never holds a partial or unverified file under
// its real name.
func Download(ctx context.Context, mirror, dir string, log zerolog.Logger, opts ...Option) error {
	o := downloadOptions{client: defaultClient}
	for _, opt := range opts {
		opt(&o)
	}
	if mirror == "" {
		mirror = DefaultMirror
	}
	if !strings.HasSuffix(mirror, "/") {
		mirror += "/"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: download: %w", err)
	}
	for _, name := range sumNames() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("train: download %s: %w", name, err)
		}
		path := filepath.Join(dir, name)
		got, err := fileSHA256(path)
		switch {
		case err == nil && got == Sums[name]:
			log.Debug().Str("file", name).Msg("mnist file present, checksum ok")
			continue
		case err == nil:
			log.Warn().Str("file", name).Str("sha256", got).Str("want", Sums[name]).
				Msg("mnist file has the wrong checksum, downloading it again")
		case errors.Is(err, fs.ErrNotExist):
		default:
			return fmt.Errorf("train: download: %w", err)
		}
		if err := fetch(ctx, o.client, mirror+name, dir, name, log); err != nil {
			return err
		}
	}
	return nil
}

// Verify checks every MNIST .gz file present in dir against Sums and reports all mismatches.
// Absent files are skipped, because Load also accepts decompressed copies, which have no sum
// here; but a dir holding none of the four is an error, as it is almost surely the wrong dir.
func Verify(dir string) error {
	var errs []error
	found := 0
	for _, name := range sumNames() {
		got, err := fileSHA256(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		found++
		if err != nil {
			errs = append(errs, fmt.Errorf("train: verify: %w", err))
			continue
		}
		if want := Sums[name]; got != want {
			errs = append(errs, &ChecksumError{File: name, Want: want, Got: got})
		}
	}
	if found == 0 {
		return fmt.Errorf("train: verify: no MNIST .gz files in %s: %w", dir, fs.ErrNotExist)
	}
	return errors.Join(errs...)
}

func sumNames() []string {
	names := make([]string, 0, len(Sums))
	for n := range Sums {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fetch(ctx context.Context, client *http.Client, url, dir, name string, log zerolog.Logger) (err error) {
	start := time.Now()
	want := Sums[name]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("train: download %s: %w", name, err)
	}
	log.Info().Str("file", name).Str("url", url).Msg("downloading mnist file")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("train: download %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &StatusError{URL: url, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > maxDownloadBytes {
		return fmt.Errorf("train: download %s: %s announces %d bytes, more than the %d allowed",
			name, url, resp.ContentLength, maxDownloadBytes)
	}

	// A dot-prefixed temp name in the same dir keeps the rename atomic (same file system) and
	// keeps the partial file out of the way of anything globbing for the real names.
	tmp, err := os.CreateTemp(dir, "."+name+".*.part")
	if err != nil {
		return fmt.Errorf("train: download %s: %w", name, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				tmp.Close()
			}
			os.Remove(tmp.Name())
		}
	}()

	h := sha256.New()
	pw := &progressWriter{log: log, name: name, total: resp.ContentLength, last: start}
	n, err := io.Copy(io.MultiWriter(tmp, h, pw), io.LimitReader(resp.Body, maxDownloadBytes+1))
	if err != nil {
		return fmt.Errorf("train: download %s from %s: %w", name, url, err)
	}
	if n > maxDownloadBytes {
		return fmt.Errorf("train: download %s: %s sent more than %d bytes", name, url, maxDownloadBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &ChecksumError{File: name, Want: want, Got: got}
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("train: download %s: %w", name, err)
	}
	closed = true
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("train: download %s: %w", name, err)
	}
	// CreateTemp makes the file 0600; the data set is not secret.
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("train: download %s: %w", name, err)
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("train: download %s: %w", name, err)
	}
	log.Info().Str("file", name).Int64("bytes", n).Dur("took", time.Since(start)).
		Msg("downloaded mnist file, checksum ok")
	return nil
}

// progressWriter logs at most every few seconds, so a slow download shows signs of life
// without flooding the log on a fast one.
type progressWriter struct {
	log   zerolog.Logger
	name  string
	total int64 // -1 if unknown
	done  int64
	last  time.Time
}

const progressEvery = 3 * time.Second

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= progressEvery {
		p.last = now
		ev := p.log.Info().Str("file", p.name).Int64("bytes", p.done)
		if p.total > 0 {
			ev = ev.Int64("total", p.total).Float64("percent", float64(100*p.done)/float64(p.total))
		}
		ev.Msg("download progress")
	}
	return len(b), nil
}
