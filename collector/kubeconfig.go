package collector

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// kubeconfigReuse is how long one read of a container's kubeconfig serves the sources that need
// it: the moment of one round of reads. Not longer: k3s rewrites the file late in a start.
const kubeconfigReuse = 5 * time.Second

// kubeconfigShare shares one read of a container's admin kubeconfig between the sources that
// read through its API server at the same moment (secrets, settings, 2.3's listener): one
// archive call for them all. A failed read is not kept.
type kubeconfigShare struct {
	flight singleflight.Group
	mu     sync.Mutex
	data   []byte
	basis  readBasis
	at     time.Time
}

func (k *kubeconfigShare) read(ctx context.Context, eng rancher.Engine, c rancher.Container) ([]byte, error) {
	b := basisOf(c)
	if data := k.kept(b); data != nil {
		return data, nil
	}
	v, err, _ := k.flight.Do("read", func() (any, error) {
		// Looked again: a read that ended after the look above and before this flight began
		// is shared too.
		if data := k.kept(b); data != nil {
			return data, nil
		}
		data, err := rancher.ReadKubeconfig(ctx, eng, c.ID)
		if err == nil {
			k.mu.Lock()
			k.data, k.basis, k.at = data, b, time.Now()
			k.mu.Unlock()
		}
		return data, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// kept is the read kept for the container's start, if it is recent enough.
func (k *kubeconfigShare) kept(b readBasis) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.data != nil && k.basis == b && time.Since(k.at) < kubeconfigReuse {
		return k.data
	}
	return nil
}
