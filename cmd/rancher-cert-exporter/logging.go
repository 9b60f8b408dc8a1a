package main

import (
	"log/slog"
	"os"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	sloggokit "github.com/tjhop/slog-gokit"
)

func newLogger(lvl, format string) log.Logger {
	var logger log.Logger
	if format == "json" {
		logger = log.NewJSONLogger(log.NewSyncWriter(os.Stderr))
	} else {
		logger = log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr))
	}
	logger = level.NewFilter(logger, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	return log.With(logger, "ts", log.DefaultTimestampUTC)
}

// slogger bridges the go-kit logger to the *slog.Logger exporter-toolkit takes.
func slogger(logger log.Logger) *slog.Logger {
	return slog.New(sloggokit.NewGoKitHandler(logger, slog.LevelDebug))
}
