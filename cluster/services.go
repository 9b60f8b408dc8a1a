package cluster

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ServiceIP is the ClusterIP of a Service; found is false when the cluster has no such Service.
// Only the address is kept of the object.
func (c *Client) ServiceIP(ctx context.Context, namespace, name string) (ip string, found bool, err error) {
	var svc corev1.Service
	err = c.rc.Get().Namespace(namespace).Resource("services").Name(name).Do(ctx).Into(&svc)
	switch {
	case apierrors.IsNotFound(err):
		return "", false, nil
	case err != nil:
		return "", false, classify("get service "+namespace+"/"+name, err)
	}
	return svc.Spec.ClusterIP, true, nil
}
