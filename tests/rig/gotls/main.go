// gotls serves TLS on 127.0.0.1 with Go's crypto/tls, the stack Argo CD's repo-server uses, in one of
// several client-authentication modes: the correct one, and variants each wrong in exactly one
// respect that no real Argo CD build offers. Behind TLS it speaks HTTP/1.1 and HTTP/2 (ALPN) with
// just enough gRPC for grpc.health.v1.Health/Check, so the harness can probe it with
// --protocol grpc, https or tls.
//
// It prints "listening on ADDR" on stdout once ready and serves until killed.
package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

var modes = map[string]string{
	"strict":              "RequireAndVerifyClientCert against the client CA (what Argo CD does)",
	"issuer-name-only":    "a certificate is required and checked for validity and clientAuth, but its issuer is matched by NAME: the signature is never checked",
	"validity-window":     "the chain is verified at the leaf's own notBefore instead of now (ignores expiry)",
	"sni-named":           "client certificates are required only when SNI is argocd-repo-server",
	"sni-present":         "client certificates are required only when SNI is present",
	"slow-reject":         "verifies correctly, but refuses a bad client 2 s after the handshake",
	"hang-rpc":            "no client authentication, and RPCs from clients without a certificate never get an answer",
	"http-reject":         "the handshake never requires a certificate; a request without a verified one gets HTTP 400 (nginx's ssl_verify_client)",
	"eku-ignored":         "the chain is verified, but any extended key usage is accepted (serverAuth-only certificates get in)",
	"any-in-chain":        "a client is admitted when ANY certificate it sends chains to the client CA (the rest serving as intermediates)",
	"last-is-ca":          "a client is admitted when the LAST certificate it sends is a certificate of the client CA file",
	"issuer-serial-cache": "verifies correctly, but remembers each verified certificate by issuer and serial and admits any later certificate with the same pair unverified",
	"address-cache":       "verifies correctly, but remembers each client address that presented a verified certificate and admits any later connection from it without one",
	"alpn-absent":         "client certificates are required only when the client offers ALPN",
	"alpn-http11":         "client certificates are required unless the client offers http/1.1 without h2",
	"sni-san":             "client certificates are required unless SNI is argocd-repo-server.argocd.svc (a name in the server's own certificate)",
	"tls12-cbc-open":      "TLS 1.3 as strict; TLS 1.2 only with TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (a suite rustls cannot speak) and no client authentication",
	"tls12-cbc-strict":    "as tls12-cbc-open, but TLS 1.2 requires and verifies client certificates too (correct, yet unspeakable for rustls)",
	"open-tls12":          "RequireAndVerifyClientCert under TLS 1.3, no client authentication under TLS 1.2",
	"h2c-upgrade":         "RequireAndVerifyClientCert over TLS; a plaintext connection (first byte not a TLS record) is refused when it opens with the HTTP/2 preface, but switched to h2c and served when it asks with HTTP/1.1 Upgrade: h2c (a cmux-style multiplexer)",
	"resume-skips-auth":   "a certificate is requested, not required; after the handshake a connection without a verified one is closed, unless it resumed a session (whose tickets went to every client, verified or not)",
	"resume-checks-auth":  "as resume-skips-auth, but a resumed connection is judged by the certificates its session carries (correct)",
	"sni-case":            "client certificates are required for the names of the server's certificate spelt exactly and for any other name, but not for those names in another letter case (a policy map keyed by exact bytes beside a case-insensitive router)",
	"alpn-acme":           "client certificates are required unless the client offers acme-tls/1 among its ids (a TLS-ALPN-01 challenge responder in front, matching on any id of the list, then serving the protocol the server prefers)",
	"alpn-order":          "client certificates are required unless the client's first ALPN id is http/1.1 with h2 behind it (a proxy honouring the client's preference routes it to a web chain without client authentication)",
	"group-p384":          "client certificates are required unless the client offers P-384 as its only key exchange group (a chain kept for CNSA-style clients, without client authentication)",
	"legacy-open":         "TLS 1.0 and 1.1 offered (as -tls10), and a client that offers nothing newer gets in without client authentication; TLS 1.2 and 1.3 as strict",
	"peek-record":         "a front end that reads the first TLS record and picks the chain from the ClientHello in it: strict when the hello is whole there, without client authentication when it spans records",
	"peek-segment":        "a front end that picks the chain from its first read of the connection: strict when the whole ClientHello came in it, without client authentication when it did not",
	"sni-long":            "client certificates are required unless the server name is longer than 253 characters (a peeker that gives up on it falls through to a default chain)",
	"sni-dot":             "an SNI router (TCP passthrough) whose map misses names with a trailing dot: those go to -fallback (a server without client authentication), the rest as strict",
	"group-mlkem":         "client certificates are required unless the client supports X25519MLKEM768 (a chain kept for post-quantum clients, without client authentication)",
	"grease-open":         "client certificates are required unless the client lists a GREASE cipher suite (a policy that branches on values it does not know)",
	"sigalg-twin":         "a dual-certificate server (its certificate, and one of the other key type, ECDSA or RSA, made at start): a client that cannot verify the first gets the second chain, kept without client authentication",
	"extra-ca":            "RequireAndVerifyClientCert against the client CA plus a second CA nobody approved (as if the system store were trusted too)",
}

func main() {
	mode := flag.String("mode", "strict", "client-authentication mode")
	cert := flag.String("cert", "", "server certificate (PEM)")
	key := flag.String("key", "", "server key (PEM)")
	clientCA := flag.String("client-ca", "", "client CA (PEM)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	noTickets := flag.Bool("no-tickets", false, "issue no TLS session tickets")
	maxTLS12 := flag.Bool("max-tls12", false, "offer TLS 1.2 at most")
	noGRPC := flag.Bool("no-grpc", false, "answer every request as a plain web server (no gRPC)")
	tls10 := flag.Bool("tls10", false, "offer TLS 1.0 and 1.1 too (client authentication as the mode says)")
	fallback := flag.String("fallback", "", "with -mode sni-dot: where names with a trailing dot are passed (HOST:PORT)")
	flag.Parse()
	if _, ok := modes[*mode]; !ok {
		fmt.Fprintf(os.Stderr, "unknown -mode %q; modes:\n", *mode)
		for m, d := range modes {
			fmt.Fprintf(os.Stderr, "  %-18s %s\n", m, d)
		}
		os.Exit(2)
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatalf("server certificate: %v", err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			log.Fatalf("server certificate: %v", err)
		}
	}
	pool, caCerts := loadPool(*clientCA)

	verify := func(certs []*x509.Certificate, at time.Time) error {
		if len(certs) == 0 {
			return errors.New("no client certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{
			Roots: pool, Intermediates: inter, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		return err
	}
	parse := func(raw [][]byte) []*x509.Certificate {
		var out []*x509.Certificate
		for _, r := range raw {
			if c, err := x509.ParseCertificate(r); err == nil {
				out = append(out, c)
			}
		}
		return out
	}

	base := &tls.Config{
		Certificates:           []tls.Certificate{pair},
		NextProtos:             []string{"h2", "http/1.1"},
		SessionTicketsDisabled: *noTickets,
		MinVersion:             tls.VersionTLS12,
	}
	if *maxTLS12 {
		base.MaxVersion = tls.VersionTLS12
	}
	if *tls10 || *mode == "legacy-open" {
		base.MinVersion = tls.VersionTLS10
	}
	strict := base.Clone()
	strict.ClientAuth = tls.RequireAndVerifyClientCert
	strict.ClientCAs = pool
	open := base.Clone()
	open.ClientAuth = tls.NoClientCert

	// A server that demands a certificate but judges it with `check` instead of Go's verifier.
	ownCheck := func(check func(certs []*x509.Certificate) error) *tls.Config {
		cfg := base.Clone()
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := parse(raw)
			if len(certs) == 0 {
				return errors.New("no client certificate")
			}
			return check(certs)
		}
		return cfg
	}

	cfg := strict
	// When set: judged on each connection once its handshake completed; false closes it.
	var afterHandshake func(tls.ConnectionState) bool
	switch *mode {
	case "issuer-name-only":
		cfg = ownCheck(func(certs []*x509.Certificate) error {
			leaf, now := certs[0], time.Now()
			if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
				return errors.New("certificate expired or not yet valid")
			}
			clientAuth := len(leaf.ExtKeyUsage) == 0
			for _, u := range leaf.ExtKeyUsage {
				clientAuth = clientAuth || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
			}
			if !clientAuth {
				return errors.New("certificate not for client authentication")
			}
			// Everything Go's verifier checks, but the issuer's signature: the name must match.
			for _, ca := range caCerts {
				if string(leaf.RawIssuer) == string(ca.RawSubject) {
					return nil
				}
			}
			return errors.New("issuer name unknown")
		})
	case "validity-window":
		cfg = ownCheck(func(certs []*x509.Certificate) error {
			return verify(certs, certs[0].NotBefore.Add(time.Second))
		})
	case "sni-named", "sni-present":
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if (*mode == "sni-named" && hello.ServerName == "argocd-repo-server") ||
				(*mode == "sni-present" && hello.ServerName != "") {
				return strict, nil
			}
			return open, nil
		}
	case "slow-reject":
		cfg = base.Clone()
		cfg.ClientAuth = tls.RequestClientCert
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if err := verify(parse(raw), time.Now()); err != nil {
				time.Sleep(2 * time.Second)
				return err
			}
			return nil
		}
	case "eku-ignored":
		cfg = ownCheck(func(certs []*x509.Certificate) error {
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{
				Roots: pool, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			return err
		})
	case "any-in-chain":
		cfg = ownCheck(func(certs []*x509.Certificate) error {
			for i := range certs {
				rest := append(append([]*x509.Certificate{certs[i]}, certs[:i]...), certs[i+1:]...)
				if verify(rest, time.Now()) == nil {
					return nil
				}
			}
			return errors.New("no certificate chains to the client CA")
		})
	case "last-is-ca":
		cfg = ownCheck(func(certs []*x509.Certificate) error {
			last := certs[len(certs)-1]
			for _, ca := range caCerts {
				if last.Equal(ca) {
					return nil
				}
			}
			return verify(certs, time.Now())
		})
	case "issuer-serial-cache":
		var mu sync.Mutex
		seen := map[string]bool{}
		cfg = ownCheck(func(certs []*x509.Certificate) error {
			key := string(certs[0].RawIssuer) + "/" + certs[0].SerialNumber.String()
			mu.Lock()
			defer mu.Unlock()
			if seen[key] {
				return nil
			}
			if err := verify(certs, time.Now()); err != nil {
				return err
			}
			seen[key] = true
			return nil
		})
	case "address-cache":
		var mu sync.Mutex
		verified := map[string]bool{}
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			host, _, _ := net.SplitHostPort(hello.Conn.RemoteAddr().String())
			mu.Lock()
			known := verified[host]
			mu.Unlock()
			if known {
				return withoutClientAuth(base), nil
			}
			c := strict.Clone()
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.VerifiedChains) > 0 {
					mu.Lock()
					verified[host] = true
					mu.Unlock()
				}
				return nil
			}
			return c, nil
		}
	case "alpn-absent", "alpn-http11", "sni-san":
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			offersH2, offersHTTP11 := false, false
			for _, p := range hello.SupportedProtos {
				offersH2 = offersH2 || p == "h2"
				offersHTTP11 = offersHTTP11 || p == "http/1.1"
			}
			open := (*mode == "alpn-absent" && len(hello.SupportedProtos) == 0) ||
				(*mode == "alpn-http11" && offersHTTP11 && !offersH2) ||
				(*mode == "sni-san" && hello.ServerName == "argocd-repo-server.argocd.svc")
			if open {
				return withoutClientAuth(base), nil
			}
			return strict, nil
		}
	case "sni-case", "alpn-acme", "alpn-order":
		names := append([]string{"localhost"}, pair.Leaf.DNSNames...)
		acme := withoutClientAuth(base)
		acme.NextProtos = []string{"h2", "http/1.1", "acme-tls/1"}
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			switch *mode {
			case "sni-case":
				for _, n := range names {
					if hello.ServerName != n && strings.EqualFold(hello.ServerName, n) {
						return withoutClientAuth(base), nil
					}
				}
			case "alpn-acme":
				for _, p := range hello.SupportedProtos {
					if p == "acme-tls/1" {
						return acme, nil
					}
				}
			case "alpn-order":
				p := hello.SupportedProtos
				if len(p) > 1 && p[0] == "http/1.1" && p[1] == "h2" {
					return withoutClientAuth(base), nil
				}
			}
			return strict, nil
		}
	case "group-p384":
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := hello.SupportedCurves
			if len(c) == 1 && c[0] == tls.CurveP384 {
				return withoutClientAuth(base), nil
			}
			return strict, nil
		}
	case "legacy-open":
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, v := range hello.SupportedVersions {
				if v >= tls.VersionTLS12 {
					return strict, nil
				}
			}
			return withoutClientAuth(base), nil
		}
	case "tls12-cbc-open", "tls12-cbc-strict":
		cbc := withoutClientAuth(base)
		if *mode == "tls12-cbc-strict" {
			cbc = strict.Clone()
		}
		cbc.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
		cbc.MaxVersion = tls.VersionTLS12
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, v := range hello.SupportedVersions {
				if v == tls.VersionTLS13 {
					return strict, nil
				}
			}
			return cbc, nil
		}
	case "open-tls12":
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, v := range hello.SupportedVersions {
				if v == tls.VersionTLS13 {
					return strict, nil
				}
			}
			return open, nil
		}
	case "group-mlkem":
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, c := range hello.SupportedCurves {
				if c == tls.X25519MLKEM768 {
					return withoutClientAuth(base), nil
				}
			}
			return strict, nil
		}
	case "sni-long", "grease-open":
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if *mode == "sni-long" && len(hello.ServerName) > 253 {
				return withoutClientAuth(base), nil
			}
			for _, c := range hello.CipherSuites {
				if *mode == "grease-open" && c&0x0f0f == 0x0a0a {
					return withoutClientAuth(base), nil
				}
			}
			return strict, nil
		}
	case "sigalg-twin":
		twinPair := twin(pair.Leaf)
		twinOpen := withoutClientAuth(base)
		twinOpen.Certificates = []tls.Certificate{twinPair}
		cfg = base.Clone()
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if hello.SupportsCertificate(&pair) != nil && hello.SupportsCertificate(&twinPair) == nil {
				return twinOpen, nil
			}
			return strict, nil
		}
	case "extra-ca":
		extra := unapprovedCA()
		wider := pool.Clone()
		wider.AddCert(extra)
		cfg = strict.Clone()
		cfg.ClientCAs = wider
	case "resume-skips-auth", "resume-checks-auth":
		cfg = base.Clone()
		cfg.ClientAuth = tls.RequestClientCert
		afterHandshake = func(cs tls.ConnectionState) bool {
			if cs.DidResume && *mode == "resume-skips-auth" {
				return true
			}
			return verify(cs.PeerCertificates, time.Now()) == nil
		}
	case "hang-rpc", "http-reject":
		cfg = base.Clone()
		cfg.ClientAuth = tls.RequestClientCert
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verified := r.TLS != nil && len(r.TLS.PeerCertificates) > 0 &&
			verify(r.TLS.PeerCertificates, time.Now()) == nil
		switch {
		case *mode == "hang-rpc" && !verified:
			<-r.Context().Done()
			return
		case *mode == "http-reject" && !verified:
			http.Error(w, "No required SSL certificate was sent", http.StatusBadRequest)
			return
		}
		isGRPC := !*noGRPC && r.ProtoMajor == 2 &&
			strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
		switch {
		case isGRPC && r.URL.Path == "/grpc.health.v1.Health/Check":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			// HealthCheckResponse{status: SERVING}: field 1, varint 1.
			w.Write([]byte{0, 0, 0, 0, 2, 0x08, 0x01})
			w.Header().Set("Grpc-Status", "0")
		case isGRPC:
			// A trailers-only answer: UNIMPLEMENTED, as grpc-go gives for an unknown method.
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "12")
			w.WriteHeader(http.StatusOK)
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<html>hello from gotls (%s)</html>\n", *mode)
		}
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: handler, TLSConfig: cfg, ErrorLog: log.New(os.Stderr, "", log.LstdFlags)}
	fmt.Printf("listening on %s\n", ln.Addr())
	if *mode == "h2c-upgrade" {
		serveMultiplexed(ln, srv, handler)
	}
	if afterHandshake != nil {
		serveChecked(tls.NewListener(ln, cfg), srv, afterHandshake)
	}
	switch *mode {
	case "peek-record", "peek-segment", "sni-dot":
		servePeeked(ln, srv, *mode, *fallback, strict, withoutClientAuth(base))
	}
	log.Fatal(srv.ServeTLS(ln, "", ""))
}

// serveMultiplexed sorts each connection by its first bytes: TLS records to srv; an HTTP/1.1
// request with Upgrade: h2c is answered 101 and handed to a plaintext HTTP/2 server; the HTTP/2
// preface and anything else are refused. It never returns.
func serveMultiplexed(ln net.Listener, srv *http.Server, handler http.Handler) {
	tlsLn, plainLn := newChanListener(ln.Addr()), newChanListener(ln.Addr())
	plain := &http.Server{Handler: handler, ErrorLog: srv.ErrorLog}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	plain.Protocols = &protocols
	go func() { log.Fatal(srv.ServeTLS(tlsLn, "", "")) }()
	go func() { log.Fatal(plain.Serve(plainLn)) }()
	acceptEach(ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		first, err := br.Peek(3)
		if err != nil {
			c.Close()
			return
		}
		if first[0] == 0x16 {
			c.SetReadDeadline(time.Time{})
			tlsLn.ch <- &peeked{c, br}
			return
		}
		if string(first) == "PRI" {
			c.Close()
			return
		}
		req, err := http.ReadRequest(br)
		if err != nil || !strings.EqualFold(req.Header.Get("Upgrade"), "h2c") {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
			c.Close()
			return
		}
		c.SetReadDeadline(time.Time{})
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"))
		plainLn.ch <- &peeked{c, br}
	})
}

// serveChecked completes each handshake itself and hands srv only the connections ok admits;
// the others are closed right after their handshake. It never returns.
func serveChecked(ln net.Listener, srv *http.Server, ok func(tls.ConnectionState) bool) {
	admitted := newChanListener(ln.Addr())
	go func() { log.Fatal(srv.Serve(admitted)) }()
	acceptEach(ln, func(raw net.Conn) {
		c := raw.(*tls.Conn)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := c.Handshake(); err != nil || !ok(c.ConnectionState()) {
			c.Close()
			return
		}
		c.SetDeadline(time.Time{})
		admitted.ch <- c
	})
}

// acceptEach hands every connection ln accepts to sort, each in its own goroutine. It never
// returns.
func acceptEach(ln net.Listener, sort func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("accept: %v", err)
		}
		go sort(c)
	}
}

// chanListener hands out the connections sent to it.
type chanListener struct {
	ch   chan net.Conn
	addr net.Addr
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{ch: make(chan net.Conn), addr: addr}
}

func (l *chanListener) Accept() (net.Conn, error) { return <-l.ch, nil }
func (l *chanListener) Close() error              { return nil }
func (l *chanListener) Addr() net.Addr            { return l.addr }

// peeked is a connection whose first bytes were read into r.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

// withoutClientAuth is cfg with client authentication off.
func withoutClientAuth(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	c.ClientAuth = tls.NoClientCert
	return c
}

func loadPool(path string) (*x509.CertPool, []*x509.Certificate) {
	pool := x509.NewCertPool()
	var certs []*x509.Certificate
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatalf("client CA: %v", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			log.Fatalf("client CA: %v", err)
		}
		pool.AddCert(c)
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		log.Fatalf("client CA %s: no certificate", path)
	}
	return pool, certs
}

// unapprovedCA makes a self-signed CA no operator gave the server, standing for a public root.
func unapprovedCA() *x509.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatalf("extra CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Example Public Root CA", Organization: []string{"Example Trust Services"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatalf("extra CA: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatalf("extra CA: %v", err)
	}
	return c
}

// twin makes a self-signed certificate for the names of leaf with a key of the other type
// (ECDSA P-256 for an RSA leaf, RSA 2048 otherwise): the second chain of a dual-certificate server.
func twin(leaf *x509.Certificate) tls.Certificate {
	var key crypto.Signer
	var err error
	if leaf.PublicKeyAlgorithm == x509.RSA {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		log.Fatalf("twin key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: leaf.Subject.CommonName},
		DNSNames:     leaf.DNSNames,
		IPAddresses:  leaf.IPAddresses,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if leaf.PublicKeyAlgorithm == x509.RSA {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatalf("twin certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// servePeeked picks each connection's chain from the first bytes of its ClientHello, as SNI
// routers do: peek-record reads the first record, peek-segment the first read; a whole hello
// there goes to strict, anything else to open. sni-dot passes a hello whose server name ends
// with a dot to fallback, byte for byte. It never returns.
func servePeeked(ln net.Listener, srv *http.Server, mode, fallback string, strict, open *tls.Config) {
	admitted := newChanListener(ln.Addr())
	go func() { log.Fatal(srv.Serve(admitted)) }()
	acceptEach(ln, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if mode != "peek-segment" {
			// Not a TLS record: no hello to peek at; the TLS server answers it.
			br := bufio.NewReader(c)
			if first, err := br.Peek(1); err != nil || first[0] != 0x16 {
				c.SetReadDeadline(time.Time{})
				admitted.ch <- tls.Server(&peeked{c, br}, strict)
				return
			}
			c = &peeked{c, br}
		}
		var seen []byte
		if mode == "peek-segment" {
			buf := make([]byte, 16384)
			n, err := c.Read(buf)
			if err != nil {
				c.Close()
				return
			}
			seen = buf[:n]
		} else {
			header := make([]byte, 5)
			if _, err := io.ReadFull(c, header); err != nil {
				c.Close()
				return
			}
			body := make([]byte, int(header[3])<<8|int(header[4]))
			if _, err := io.ReadFull(c, body); err != nil {
				c.Close()
				return
			}
			seen = append(header, body...)
		}
		c.SetReadDeadline(time.Time{})
		replay := &peeked{c, bufio.NewReader(io.MultiReader(bytes.NewReader(seen), c))}
		name, whole := helloServerName(seen)
		if mode == "sni-dot" && whole && strings.HasSuffix(name, ".") {
			splice(replay, fallback)
			return
		}
		cfg := strict
		if !whole && mode != "sni-dot" {
			cfg = open
		}
		admitted.ch <- tls.Server(replay, cfg)
	})
}

// helloServerName reads the ClientHello in the records of seen: its server name, and whether the
// hello was whole there.
func helloServerName(seen []byte) (string, bool) {
	var msg []byte
	for len(seen) >= 5 && seen[0] == 0x16 {
		n := int(seen[3])<<8 | int(seen[4])
		if len(seen) < 5+n {
			msg = append(msg, seen[5:]...)
			break
		}
		msg = append(msg, seen[5:5+n]...)
		seen = seen[5+n:]
	}
	if len(msg) < 4 || msg[0] != 1 {
		return "", false
	}
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if len(msg) < 4+n {
		return "", false
	}
	b := msg[4 : 4+n]
	// version, random, session id, cipher suites, compression methods, extensions
	at := 2 + 32
	if len(b) < at+1 {
		return "", true
	}
	at += 1 + int(b[at])
	if len(b) < at+2 {
		return "", true
	}
	at += 2 + (int(b[at])<<8 | int(b[at+1]))
	if len(b) < at+1 {
		return "", true
	}
	at += 1 + int(b[at])
	at += 2
	for at+4 <= len(b) {
		kind := int(b[at])<<8 | int(b[at+1])
		size := int(b[at+2])<<8 | int(b[at+3])
		if at+4+size > len(b) {
			break
		}
		data := b[at+4 : at+4+size]
		if kind == 0 && len(data) >= 5 {
			l := int(data[3])<<8 | int(data[4])
			if len(data) >= 5+l {
				return string(data[5 : 5+l]), true
			}
		}
		at += 4 + size
	}
	return "", true
}

// splice copies bytes both ways between c and a new connection to addr until either ends.
func splice(c net.Conn, addr string) {
	defer c.Close()
	up, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}
