package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clusterCommand is `ranchersim cluster ...`, run in the container (docker exec) to change what
// the simulated server manages, as provisioning and downstream agents would:
//
//	ranchersim cluster add --id c-abcde --name prod [--rke1] [--driver D] [--provider P] [--k8s V]
//	    [--cert NAME=DAYS ...] [--raw-date NAME=TEXT ...] [--etcd IP ...] [--old-dates] [--pin current|SHA256]
//	ranchersim cluster agent --id c-abcde --online=false | --pin current|SHA256
//	ranchersim cluster bulk --count N [--certs 8]
//	ranchersim cluster remove --id c-abcde
func clusterCommand(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want add, agent, bulk or remove")
	}
	store := clusterStore{file: filepath.Join(env("SIM_DATA_DIR", dataDir), clusterStoreFile)}
	fs := flag.NewFlagSet("cluster "+args[0], flag.ContinueOnError)
	id := fs.String("id", "", "cluster ID (c-xxxxx)")
	name := fs.String("name", "", "display name")
	rke1 := fs.Bool("rke1", false, "an RKE1 cluster: rancherKubernetesEngineConfig, certificatesExpiration")
	driver := fs.String("driver", "", "status.driver (rancherKubernetesEngine for --rke1, else imported)")
	provider := fs.String("provider", "", "status.provider (rke for --rke1, else k3s)")
	k8s := fs.String("k8s", "v1.27.16", "the Kubernetes version")
	oldDates := fs.Bool("old-dates", false, "certificate dates in time.String() form, as before rancher#21256")
	pin := fs.String("pin", "", "the cacerts checksum the agent was registered with: current, or a SHA-256")
	online := fs.Bool("online", true, "the cluster agent is up")
	count := fs.Int("count", 0, "bulk: how many RKE1 clusters")
	perCluster := fs.Int("certs", 8, "bulk: certificates per cluster")
	var certs, raw, etcd multi
	fs.Var(&certs, "cert", "NAME=DAYS: a certificate expiring in DAYS (negative: expired)")
	fs.Var(&raw, "raw-date", "NAME=TEXT: a certificate whose expirationDate is TEXT as it is")
	fs.Var(&etcd, "etcd", "an etcd node's IP: certificate kube-etcd-<ip with dashes>")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	now := time.Now()
	checksum := func() (string, error) {
		if *pin != "current" {
			return *pin, nil
		}
		return currentChecksum()
	}
	switch args[0] {
	case "add":
		if *id == "" {
			return fmt.Errorf("--id is required")
		}
		sum, err := checksum()
		if err != nil {
			return err
		}
		return store.update(func(all map[string]*simCluster) error {
			d, p := *driver, *provider
			switch {
			case d == "" && *rke1:
				d, p = "rancherKubernetesEngine", "rke"
			case d == "":
				d = "imported"
			}
			if p == "" {
				p = "k3s"
			}
			c := newCluster(*id, *name, d, p, *k8s, false)
			if *rke1 {
				c.Object.Spec.RKE = json.RawMessage(`{"kubernetesVersion":"` + *k8s + `","sshKeyPath":"~/.ssh/id_rsa","services":{"etcd":{"backupConfig":{"s3BackupConfig":{"secretKey":"a-credential"}}}}}`)
				c.Object.Status.CertificatesExpiration = map[string]certExpiration{}
			}
			for _, ip := range etcd {
				certs = append(certs, "kube-etcd-"+strings.ReplaceAll(ip, ".", "-")+"=365")
			}
			for _, kv := range certs {
				n, d, _ := strings.Cut(kv, "=")
				days, err := strconv.Atoi(d)
				if err != nil {
					return fmt.Errorf("--cert %s: %w", kv, err)
				}
				c.Object.Status.CertificatesExpiration[n] = certExpiration{expirationDate(now.Add(time.Duration(days)*day), *oldDates)}
			}
			for _, kv := range raw {
				n, text, _ := strings.Cut(kv, "=")
				c.Object.Status.CertificatesExpiration[n] = certExpiration{text}
			}
			c.Agent.Checksum = sum
			all[*id] = c
			return nil
		})
	case "agent":
		sum, err := checksum()
		if err != nil {
			return err
		}
		return store.update(func(all map[string]*simCluster) error {
			c, ok := all[*id]
			if !ok {
				return fmt.Errorf("no cluster %s", *id)
			}
			c.Agent.Online = *online
			if *pin != "" {
				c.Agent.Checksum = sum
			}
			return nil
		})
	case "remove":
		return store.update(func(all map[string]*simCluster) error {
			delete(all, *id)
			return nil
		})
	case "bulk":
		return store.update(func(all map[string]*simCluster) error {
			for i := 0; i < *count; i++ {
				cid := fmt.Sprintf("c-bulk%05d", i)
				c := newCluster(cid, fmt.Sprintf("bulk-%d", i), "rancherKubernetesEngine", "rke", *k8s, false)
				c.Object.Spec.RKE = json.RawMessage(`{"kubernetesVersion":"` + *k8s + `"}`)
				c.Object.Status.CertificatesExpiration = map[string]certExpiration{}
				for j := 0; j < *perCluster; j++ {
					n := fmt.Sprintf("kube-etcd-10-0-%d-%d", i/250, j)
					if j < len(rkeCertNames) {
						n = rkeCertNames[j]
					}
					c.Object.Status.CertificatesExpiration[n] = certExpiration{expirationDate(now.Add(time.Duration(30+i%300)*day), false)}
				}
				all[cid] = c
			}
			return nil
		})
	}
	return fmt.Errorf("unknown cluster command %q", args[0])
}

// currentChecksum is what agents pin: the SHA-256 of what /cacerts serves now (rancher/rancher
// pkg/cacerts/handler.go: the value with a newline added; nothing for a blank value).
func currentChecksum() (string, error) {
	data, err := os.ReadFile(filepath.Join(env("SIM_DATA_DIR", dataDir), settingStoreFile))
	if os.IsNotExist(err) {
		return "", nil // no settings (2.3, 2.4): agents check no checksum
	}
	if err != nil {
		return "", err
	}
	var all map[string]setting
	if err := json.Unmarshal(data, &all); err != nil {
		return "", err
	}
	return checksumOf(all["cacerts"].Value), nil
}

func checksumOf(cacerts string) string {
	if strings.TrimSpace(cacerts) == "" {
		return ""
	}
	if !strings.HasSuffix(cacerts, "\n") {
		cacerts += "\n"
	}
	sum := sha256.Sum256([]byte(cacerts))
	return hex.EncodeToString(sum[:])
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
