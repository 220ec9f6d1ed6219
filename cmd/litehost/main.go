// Command litehost is the one Litehost binary: the API server and its operator tools.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd(os.Getenv, os.Stdout, os.Stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "litehost:", err)
		os.Exit(1)
	}
}

// newLogger builds the one logger of the process: JSON unless LOG_FORMAT=text.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// withApp loads the configuration, opens the app and runs fn with it.
func withApp(ctx context.Context, getenv func(string) string, logw io.Writer, fn func(context.Context, *app) error) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logger := newLogger(cfg, logw)
	a, err := openApp(ctx, cfg, logger, func() time.Time { return time.Now().UTC() })
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(ctx, a)
}
