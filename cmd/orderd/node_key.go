package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	orderhttp "github.com/orderd/orderd/http"
)

// A node's own credential. With API keys, every route needs a bearer token,
// the calls one node makes to another (a checkout's reservation of a SKU
// another node serves) included. The node's token is one of the API keys,
// chosen with --node-token-file or ORDERD_NODE_TOKEN, rather than a second
// kind of secret: the peers already check API keys, and their audit log
// names the key's principal. That principal is the node principal: its
// requests may name the principal they act for (X-Orderd-On-Behalf-Of), so
// that a hold a saga changes on another node is recorded as the checkout's
// client's, as it would be on this one. Any other key naming a principal is
// refused (403), so only a holder of the node token can write another
// principal into the log; keep it as private as the keys file.

// envNodeToken holds the node token itself: an environment variable, not a
// flag, so that it is not in the process list.
const envNodeToken = "ORDERD_NODE_TOKEN"

// nodeTokenFileBytesMax bounds what is read of --node-token-file: a token is
// at most 512 bytes (http/auth.go), and a larger file is a mistake.
const nodeTokenFileBytesMax = 4 << 10

// validateNodeToken checks what can be checked before the keys are read.
func (c Config) validateNodeToken() []error {
	given := c.NodeTokenFile != "" || c.NodeTokenInline != ""
	switch {
	case c.NodeTokenFile != "" && c.NodeTokenInline != "":
		return []error{fmt.Errorf("the node token is given both as a file (--node-token-file) and inline (%s): choose one", envNodeToken)}
	case given && c.APIKeysFile == "" && c.APIKeysInline == "":
		return []error{fmt.Errorf("a node token (--node-token-file or %s) is one of the API keys, and none are configured: give --api-keys-file or ORDERD_API_KEYS with a line principal=<the node token>", envNodeToken)}
	}
	return nil
}

// NodeKey returns the API key this node calls its peers with: the one among
// keys whose token is the configured node token. None configured is the
// zero APIKey. Errors never show the token.
func (c Config) NodeKey(keys []orderhttp.APIKey) (orderhttp.APIKey, error) {
	token := c.NodeTokenInline.Reveal()
	source := envNodeToken
	if c.NodeTokenFile != "" {
		source = "--node-token-file " + c.NodeTokenFile
		var err error
		if token, err = readNodeToken(c.NodeTokenFile); err != nil {
			return orderhttp.APIKey{}, err
		}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		if c.NodeTokenFile != "" {
			return orderhttp.APIKey{}, fmt.Errorf("%s: the file is empty", source)
		}
		return orderhttp.APIKey{}, nil
	}
	for _, k := range keys {
		if subtle.ConstantTimeCompare([]byte(k.Token), []byte(token)) == 1 {
			return k, nil
		}
	}
	return orderhttp.APIKey{}, fmt.Errorf("%s: the node token is none of the API keys; add a line principal=<the node token> to them, the same on every node", source)
}

func readNodeToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--node-token-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, nodeTokenFileBytesMax+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("--node-token-file %s: %w", path, err)
	case len(b) > nodeTokenFileBytesMax:
		return "", fmt.Errorf("--node-token-file %s: larger than %d bytes; it holds one token", path, nodeTokenFileBytesMax)
	case strings.ContainsAny(strings.TrimSpace(string(b)), "\n\r"):
		return "", errors.New("--node-token-file " + path + ": more than one line; it holds one token")
	}
	return string(b), nil
}
