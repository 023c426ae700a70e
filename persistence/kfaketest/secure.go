package kfaketest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// certLifetime is how long the test certificates are valid: long enough for
// any test run, short enough that a leaked one is soon worthless.
const certLifetime = time.Hour

// PKI is a throwaway certificate authority, made at test time: no private
// key is ever committed. Its files live in a temporary directory of the test.
type PKI struct {
	// CAFile holds the CA's certificate (PEM): what a client trusts.
	CAFile string

	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

// NewPKI makes a CA named name.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(certLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{dir: t.TempDir(), ca: ca, caKey: key, serial: 1}
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

// Pool is the CA as a certificate pool, for a broker that verifies clients.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// ServerTLS is a broker's TLS configuration: a certificate for 127.0.0.1 and
// localhost signed by the CA, and, with clientCAs, client certificates
// required and verified against them.
func (p *PKI) ServerTLS(t testing.TB, clientCAs *x509.CertPool) *tls.Config {
	t.Helper()
	cert := p.issue(t, "broker", x509.ExtKeyUsageServerAuth)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = clientCAs
	}
	return cfg
}

// ClientFiles issues a client certificate and writes it and its key as PEM
// files, returning their paths.
func (p *PKI) ClientFiles(t testing.TB, name string) (certFile, keyFile string) {
	t.Helper()
	cert := p.issue(t, name, x509.ExtKeyUsageClientAuth)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", cert.Certificate[0]), p.write(t, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func (p *PKI) issue(t testing.TB, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key := newKey(t)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *PKI) write(t testing.TB, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// SASLUser is a user a secure cluster knows, for one mechanism.
type SASLUser struct{ Mechanism, User, Password string }

// StartSecureCluster starts a one-broker kfake cluster that speaks TLS with
// tlsCfg (nil: plaintext) and, with users, requires SASL from every client.
// It is closed when t ends.
func StartSecureCluster(t testing.TB, tlsCfg *tls.Config, users ...SASLUser) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if tlsCfg != nil {
		opts = append(opts, kfake.TLS(tlsCfg))
	}
	if len(users) > 0 {
		opts = append(opts, kfake.EnableSASL())
	}
	for _, u := range users {
		opts = append(opts, kfake.Superuser(u.Mechanism, u.User, u.Password))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
