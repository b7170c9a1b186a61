#!/usr/bin/env bash
# Regenerates the second-factor test data with the real OpenSSH tools. The outputs are checked in;
# tests never run this script. Run it only to change the data, then re-run the unit tests.
#
#   tests/data/touch/generate.sh        # from anywhere; writes next to this script
#
# Keys (private keys are test-only):
#   sk_ecdsa, sk_ed25519                  security keys on OpenSSH's software authenticator
#                                         (sk-dummy: flags 0x01, counter always 0x12345678)
#   sk_ecdsa_notouch, sk_ed25519_notouch  the same made with -O no-touch-required (flags 0x00)
#   ed25519, ecdsa256, ecdsa384, ecdsa521, rsa   plain keys (what a PIV card holds)
# Signatures over message.txt, namespace touchgate-mfa@test:
#   <key>.sig                 ssh-keygen -Y sign (hash sha512, rsa-sha2-512 for RSA)
#   <key>_sha256.sig          ssh-keygen -Y sign -O hashalg=sha256
# Agent dialogue (agent/), complete frames as a real ssh-agent exchanged them:
#   identities_request.bin, identities_answer.bin   REQUEST_IDENTITIES and its answer
#   sign_request_<key>.bin, sign_response_<key>.bin SIGN_REQUEST of the SSHSIG signed data of
#                                                   message.txt, and the agent's SIGN_RESPONSE
#   sign_request_rsa.bin      flags 4 (RSA_SHA2_512); sign_request_rsa_sha256.bin flags 2
#   sign_request_rsa_sha1.bin, sign_response_rsa_sha1.bin   flags 0: the agent signs with ssh-rsa
#   sign_request_unknown.bin, sign_response_unknown.bin     a key the agent lacks: FAILURE
#   agent_<key>.sig           the agent's signature wrapped as an armoured SSHSIG by the helper
#                             below; ssh-keygen -Y verify accepts each one
# Fuzz seeds written to tests/fuzz/corpus/{agent,sk_signature,sshsig}/ (sk_signature: the sk
# signature blobs, alone and as `string public_key || signature`).
#
# Needs: ssh-keygen, ssh-agent, ssh-add, python3, and the sk-dummy software authenticator from
# Debian's openssh-tests package.
set -euo pipefail
export TZ=UTC LC_ALL=C
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fuzz="$here/../../fuzz/corpus"
sk_provider="${SK_PROVIDER:-/usr/lib/openssh/regress/misc/sk-dummy/sk-dummy.so}"
namespace="touchgate-mfa@test"
cd "$here"
rm -rf agent ./*.sig ./*.pub allowed_signers message.txt
rm -f sk_ecdsa sk_ed25519 sk_ecdsa_notouch sk_ed25519_notouch ed25519 ecdsa256 ecdsa384 ecdsa521 rsa
mkdir -p agent "$fuzz/agent" "$fuzz/sk_signature" "$fuzz/sshsig"
rm -f "$fuzz"/agent/*.bin "$fuzz"/sk_signature/*.bin "$fuzz"/sshsig/*.sig "$fuzz"/sshsig/*.bin
unset SSH_AUTH_SOCK SSH_AGENT_PID

printf 'touchgate second factor\nsession 4f1c9a, target db.example.com:22\n' >message.txt

keygen() { ssh-keygen -q -N '' -C "$1@touchgate" "${@:2}" -f "$1"; }
keygen sk_ecdsa -t ecdsa-sk -w "$sk_provider"
keygen sk_ed25519 -t ed25519-sk -w "$sk_provider"
keygen sk_ecdsa_notouch -t ecdsa-sk -w "$sk_provider" -O no-touch-required
keygen sk_ed25519_notouch -t ed25519-sk -w "$sk_provider" -O no-touch-required
keygen ed25519 -t ed25519
keygen ecdsa256 -t ecdsa -b 256
keygen ecdsa384 -t ecdsa -b 384
keygen ecdsa521 -t ecdsa -b 521
keygen rsa -t rsa -b 3072
sk_keys=(sk_ecdsa sk_ed25519 sk_ecdsa_notouch sk_ed25519_notouch)
plain_keys=(ed25519 ecdsa256 ecdsa384 ecdsa521 rsa)

# Who may sign, for ssh-keygen -Y verify. (It accepts the no-touch signatures too: ssh-keygen
# does not look at the user-presence flag of an SSHSIG.)
for k in "${sk_keys[@]}" "${plain_keys[@]}"; do
  printf 'test@touchgate %s\n' "$(cut -d' ' -f1,2 "$k.pub")"
done >allowed_signers

sign() {  # sign KEY OUT [options]
  local key="$1" out="$2"
  shift 2
  SSH_SK_PROVIDER="$sk_provider" ssh-keygen -q -Y sign -n "$namespace" -f "$key" "$@" \
    message.txt >/dev/null 2>&1
  mv message.txt.sig "$out"
}
for k in "${sk_keys[@]}" "${plain_keys[@]}"; do sign "$k" "$k.sig"; done
sign ed25519 ed25519_sha256.sig -O hashalg=sha256
sign sk_ecdsa sk_ecdsa_sha256.sig -O hashalg=sha256

# A real agent holding every key but ecdsa384, asked over its socket by the helper below.
agent_dir="$(mktemp -d)"
trap 'kill "$SSH_AGENT_PID" 2>/dev/null || true; rm -rf "$agent_dir"' EXIT
eval "$(ssh-agent -s -a "$agent_dir/agent.sock" -P "$sk_provider")" >/dev/null
ssh-add -q -S "$sk_provider" "${sk_keys[@]}" ed25519 ecdsa256 ecdsa521 rsa 2>/dev/null

python3 - "$namespace" "$fuzz" <<'PY'
import base64, hashlib, os, socket, struct, sys

namespace, fuzz = sys.argv[1], sys.argv[2]
message = open("message.txt", "rb").read()

def string(b):
    return struct.pack(">I", len(b)) + b

def frame(body):
    return struct.pack(">I", len(body)) + body

def blob_of(pub):
    return base64.b64decode(open(pub).read().split()[1])

def armor(blob):
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i:i + 70] for i in range(0, len(b64), 70)]
    return "-----BEGIN SSH SIGNATURE-----\n" + "".join(l + "\n" for l in lines) + \
        "-----END SSH SIGNATURE-----\n"

def read_string(b, off):
    (n,) = struct.unpack(">I", b[off:off + 4])
    return b[off + 4:off + 4 + n], off + 4 + n

def dearmor(path):
    lines = open(path).read().splitlines()
    return base64.b64decode("".join(lines[1:-1]))

sock = socket.socket(socket.AF_UNIX)
sock.connect(os.environ["SSH_AUTH_SOCK"])

def exchange(request):
    sock.sendall(request)
    head = b""
    while len(head) < 4:
        head += sock.recv(4 - len(head))
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        body += sock.recv(n - len(body))
    return head + body

def save(path, data):
    with open(path, "wb") as f:
        f.write(data)

request = frame(bytes([11]))
answer = exchange(request)
save("agent/identities_request.bin", request)
save("agent/identities_answer.bin", answer)
save(os.path.join(fuzz, "agent", "identities_answer.bin"), answer)

signed = b"SSHSIG" + string(namespace.encode()) + string(b"") + string(b"sha512") + \
    string(hashlib.sha512(message).digest())
for name, flags in [("sk_ecdsa", 0), ("sk_ed25519", 0), ("sk_ecdsa_notouch", 0),
                    ("sk_ed25519_notouch", 0), ("ed25519", 0), ("ecdsa256", 0),
                    ("ecdsa521", 0), ("rsa", 4), ("rsa_sha256", 2), ("rsa_sha1", 0),
                    ("unknown", 0)]:
    key = {"rsa_sha256": "rsa", "rsa_sha1": "rsa", "unknown": "ecdsa384"}.get(name, name)
    request = frame(bytes([13]) + string(blob_of(key + ".pub")) + string(signed) +
                    struct.pack(">I", flags))
    response = exchange(request)
    save("agent/sign_request_%s.bin" % name, request)
    save("agent/sign_response_%s.bin" % name, response)
    save(os.path.join(fuzz, "agent", "sign_response_%s.bin" % name), response)
    if name in ("rsa_sha1", "unknown"):
        continue
    assert response[4] == 14, name
    sig, _ = read_string(response, 5)
    sshsig = b"SSHSIG" + struct.pack(">I", 1) + string(blob_of(key + ".pub")) + \
        string(namespace.encode()) + string(b"") + string(b"sha512") + string(sig)
    with open("agent_%s.sig" % name, "w") as f:
        f.write(armor(sshsig))

# Fuzz seeds: SSHSIG blobs and armoured files, and the sk signature blobs inside them.
for path in sorted(os.listdir(".")):
    if not path.endswith(".sig"):
        continue
    blob = dearmor(path)
    stem = path[:-4]
    save(os.path.join(fuzz, "sshsig", stem + ".bin"), blob)
    save(os.path.join(fuzz, "sshsig", path), open(path, "rb").read())
    if path.startswith("sk_") or path.startswith("agent_sk_"):
        off = 6 + 4
        for _ in range(4):
            _, off = read_string(blob, off)
        sig, off = read_string(blob, off)
        assert off == len(blob)
        key, _ = read_string(blob, 10)
        save(os.path.join(fuzz, "sk_signature", stem + ".bin"), sig)
        save(os.path.join(fuzz, "sk_signature", stem + "_keyed.bin"), string(key) + sig)
PY

# Every signature verifies with ssh-keygen, including the SSHSIGs the helper assembled.
for f in ./*.sig; do
  ssh-keygen -q -Y verify -f allowed_signers -I test@touchgate -n "$namespace" -s "$f" \
    <message.txt >/dev/null
  ssh-keygen -q -Y check-novalidate -n "$namespace" -s "$f" <message.txt >/dev/null
done
echo "touch test data regenerated in $here"
