package rancher

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Source is one archive the engine streams for a location: a whole directory or one file.
type Source struct {
	Path     string // what was asked for
	Location Location
}

// Sources lists what is fetched for the locations, with a key file beside each file named
// in a location when withKeys is set (a backup keeps the keys; a scrape never reads them).
func Sources(locs []Location, withKeys bool) []Source {
	var out []Source
	for _, l := range locs {
		if l.Files == nil {
			out = append(out, Source{Path: l.Dir, Location: l})
			continue
		}
		for _, name := range l.Files {
			out = append(out, Source{Path: l.Path(name), Location: l})
			if withKeys {
				out = append(out, Source{Path: l.Path(keyFor(name)), Location: l})
			}
		}
	}
	return out
}

// keyFor is the key file beside a certificate file (client-kubelet.crt → client-kubelet.key).
func keyFor(crt string) string { return crt[:len(crt)-len(".crt")] + ".key" }

// Walk streams each source through the archive endpoint, which needs no exec and no shell and
// works on running, restarting and stopped containers alike. A missing optional source is
// skipped; fn reads the tar stream of one source.
func Walk(ctx context.Context, eng Engine, id string, sources []Source, fn func(Source, io.Reader) error) error {
	for _, src := range sources {
		res, err := eng.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: src.Path})
		if err != nil {
			if errdefs.IsNotFound(err) {
				if src.Location.Optional || src.Path != src.Location.Dir {
					continue
				}
				return readerr.Newf(readerr.NotFound, "container %s has no %s: %v", id, src.Path, err)
			}
			return dockerError(fmt.Sprintf("read %s from container %s", src.Path, id), err)
		}
		err = fn(src, res.Content)
		res.Content.Close()
		if err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
	}
	return nil
}

// fetchers bounds the archive calls one tree read makes at once.
const fetchers = 4

// ReadTree reads the certificate files of the locations, fetching up to fetchers sources at
// once; the files come in the order of the sources.
func ReadTree(ctx context.Context, eng Engine, id string, locs []Location) ([]File, error) {
	sources := Sources(locs, false)
	got := make([][]File, len(sources))
	budget := &treeBudget{}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchers)
	for i, src := range sources {
		g.Go(func() error {
			return Walk(ctx, eng, id, []Source{src}, func(src Source, r io.Reader) error {
				files, err := readArchive(r, src.Path, budget)
				got[i] = files
				return err
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(got...), nil
}
