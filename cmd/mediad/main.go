// Command mediad is the media upload service. main only calls run, which
// is what tests call too.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/logicspike/mediad/app"
	"github.com/logicspike/mediad/config"
	"github.com/logicspike/mediad/ent"
	"github.com/logicspike/mediad/internal/media"
	"github.com/logicspike/mediad/internal/ratelimit"
	"github.com/logicspike/mediad/internal/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args, os.Getenv, os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, errFound):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "mediad:", err)
		os.Exit(2)
	}
}

// errFound is what run returns when reconcile found something: exit 1.
var errFound = errors.New("reconcile found differences")

const usage = "usage: mediad [reconcile [--fix]]"

// run loads the configuration, builds the dependencies and serves until ctx
// ends, then shuts down gracefully; or runs the subcommand args[1] names.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	reconciling, fix := false, false
	switch strings.Join(args[min(len(args), 1):], " ") {
	case "":
	case "reconcile":
		reconciling = true
	case "reconcile --fix", "reconcile -fix":
		reconciling, fix = true, true
	default:
		return fmt.Errorf("unknown arguments %q (%s)", strings.Join(args[1:], " "), usage)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)

	var ln net.Listener
	if !reconciling {
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer ln.Close()
		cfg.ListenAddr = ln.Addr().String() // the real port, when LISTEN_ADDR asked for :0
	}

	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	store, blobs, err := openStore(cfg)
	if err != nil {
		return err
	}
	svc := media.New(db, store, log, media.Config{
		PublicURL: cfg.PublicURL(),
		MaxBytes: map[media.Purpose]int64{
			media.Avatar: cfg.MaxAvatarBytes, media.Logo: cfg.MaxLogoBytes, media.Attachment: cfg.MaxAttachmentBytes,
		},
		AttachmentTypes: cfg.AttachmentTypes,
		MaxImagePixels:  cfg.MaxImagePixels,
		MasterMaxSide:   cfg.MasterMaxSide,
		Variants:        map[media.Purpose][]media.Variant{media.Avatar: variants(cfg.AvatarSizes), media.Logo: variants(cfg.LogoSizes)},
	})
	if reconciling {
		return reconcile(ctx, svc, fix, stdout)
	}
	limits := app.RateLimits{
		Limiter:    ratelimit.NewLocal(),
		Requests:   ratelimit.PerMinute(cfg.RateLimitRequestsPerMinute),
		Uploads:    ratelimit.PerMinute(cfg.RateLimitUploadsPerMinute),
		FailClosed: cfg.RateLimitFailClosed,
	}
	checks := map[string]func(context.Context) error{}
	if cfg.RedisURL != "" {
		rdb, err := ratelimit.NewRedisClient(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		defer rdb.Close()
		limits.Limiter = ratelimit.NewRedis(rdb)
		checks["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}
	handler := app.NewServer(app.Deps{Config: cfg, Media: svc, Log: log, Blobs: blobs, RateLimits: limits, Checks: checks})

	reapCtx, stopReaper := context.WithCancel(context.Background())
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		svc.RunReaper(reapCtx, cfg.ReapInterval, cfg.ReapPendingAfter)
	}()
	defer func() { stopReaper(); <-reaped }()
	return serve(ctx, cfg, log, ln, handler)
}

// reconcile prints what differs between the database and the store (and
// repairs it with fix). Found something: errFound (exit 1).
func reconcile(ctx context.Context, svc *media.Service, fix bool, stdout io.Writer) error {
	r, err := svc.Reconcile(ctx, fix)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, id := range r.Missing {
		fmt.Fprintf(stdout, "missing objects of file %s\n", id)
	}
	for _, key := range r.Orphans {
		fmt.Fprintf(stdout, "orphan object %s\n", key)
	}
	fmt.Fprintf(stdout, "rows checked: %d\nobjects checked: %d\nmissing objects: %d\norphan objects: %d\n",
		r.RowsChecked, r.ObjectsChecked, len(r.Missing), len(r.Orphans))
	if fix && !r.Clean() {
		fmt.Fprintln(stdout, "fixed: rows with missing objects marked failed, orphan objects deleted")
	}
	if !r.Clean() {
		return errFound
	}
	return nil
}

// serve listens until ctx ends, then stops accepting and lets in-flight
// requests finish within SHUTDOWN_GRACE. Requests still running then are
// cancelled (their uploads end failed, not pending) and given a little
// more time to record that.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ln net.Listener, handler http.Handler) error {
	base, cut := context.WithCancelCause(context.Background())
	defer cut(nil)
	var inflight sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "storage", cfg.Storage, "public_url", cfg.PublicURL())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(graceCtx); err != nil {
		// Cancel what still runs and close the connections (a read blocked
		// on a stalled client ends only so); then wait for the handlers to
		// record their uploads as failed before the database closes.
		log.Warn("grace over: cancelling the requests still running")
		cut(app.ShutdownCause())
		srv.Close()
		finished := make(chan struct{})
		go func() { inflight.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(40 * time.Second):
			log.Error("requests still running after the grace and clean-up time")
		}
	}
	log.Info("stopped")
	return nil
}

// variants turns validated AVATAR_SIZES / LOGO_SIZES into the service's boxes.
func variants(list []string) []media.Variant {
	sizes, _ := config.ParseSizes(list) // Validate already refused bad ones
	out := make([]media.Variant, len(sizes))
	for i, s := range sizes {
		out[i] = media.Variant{Name: s.Name, Pixels: s.Pixels}
	}
	return out
}

func newLogger(cfg config.Config, stdout io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "" {
		format = "json"
		if f, ok := stdout.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	var h slog.Handler = slog.NewJSONHandler(stdout, opts)
	if format == "text" {
		h = slog.NewTextHandler(stdout, opts)
	}
	return slog.New(app.LogHandler(h))
}

// openDatabase opens SQLite (embedded) or PostgreSQL and migrates it.
func openDatabase(ctx context.Context, cfg config.Config) (*ent.Client, error) {
	driver, dsn, err := cfg.Database()
	if err != nil {
		return nil, err
	}
	var drv *entsql.Driver
	switch driver {
	case "sqlite":
		if cfg.DatabaseURL == "" {
			if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
				return nil, fmt.Errorf("data dir: %w", err)
			}
		}
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		drv = entsql.OpenDB(dialect.SQLite, db)
	case "postgres":
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		drv = entsql.OpenDB(dialect.Postgres, db)
	}
	client := ent.NewClient(ent.Driver(drv))
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Schema.Create(mctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("database %s: migrate: %w", driver, err)
	}
	return client, nil
}

// openStore builds the configured object store; with disk storage it also
// returns the handler that serves /blobs/.
func openStore(cfg config.Config) (storage.Store, http.Handler, error) {
	if cfg.Storage == "s3" {
		return storage.NewS3(storage.S3Config{
			Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, Bucket: cfg.S3Bucket,
			AccessKeyID: cfg.S3AccessKeyID, SecretAccessKey: cfg.S3SecretAccessKey, PathStyle: cfg.S3PathStyle,
			PartSize: cfg.S3PartSize, PartConcurrency: cfg.S3PartConcurrency, MaxUploads: cfg.S3MaxUploads,
		}), nil, nil
	}
	disk, err := storage.NewDisk(cfg.BlobDir())
	if err != nil {
		return nil, nil, err
	}
	return disk, disk.Handler(), nil
}
