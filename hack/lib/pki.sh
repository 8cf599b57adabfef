# shellcheck shell=bash
# The cluster's PKI and kubeconfigs, made with openssl under $RUDDER_HOME/pki (see hack/README.md).
#
# Keys are RSA 2048 in PKCS#8 PEM (what kubeadm uses; rustls, Go and openssl all read it). Every file is
# reused when present, so a re-run of `up` keeps the identities the running cluster already trusts.

PKI_DAYS=${PKI_DAYS:-3650}
PKI_APISERVER_URL=https://127.0.0.1:6443

pki::dir() { echo "$RUDDER_HOME/pki"; }

pki::_key() {
  [[ -s $1 ]] && return 0
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.tmp" 2>/dev/null \
    || util::die "failed to generate the key $1"
  chmod 600 "$1.tmp" && mv "$1.tmp" "$1"
}

# pki::ensure_ca makes the self-signed cluster CA.
pki::ensure_ca() {
  local d; d=$(pki::dir)
  mkdir -p "$d" && chmod 700 "$d"
  pki::_key "$d/ca.key"
  [[ -s $d/ca.crt ]] && return 0
  openssl req -x509 -new -key "$d/ca.key" -subj "/CN=rudder-ca" -days "$PKI_DAYS" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$d/ca.crt.tmp" 2>/dev/null || util::die "failed to create the cluster CA"
  mv "$d/ca.crt.tmp" "$d/ca.crt"
}

# pki::ensure_cert OUT_PREFIX SUBJECT USAGE [SAN] makes OUT_PREFIX.{key,crt} signed by the cluster CA.
# USAGE is serverAuth, clientAuth or both ("serverAuth,clientAuth"); SAN like "IP:127.0.0.1,DNS:x".
pki::ensure_cert() {
  local out=$1 subject=$2 usage=$3 san=${4:-}
  local d; d=$(pki::dir)
  mkdir -p "${out%/*}"
  pki::_key "$out.key"
  [[ -s $out.crt ]] && return 0
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    [[ -n $san ]] && echo "subjectAltName=$san"
  } > "$ext"
  if ! openssl req -new -key "$out.key" -subj "$subject" 2>/dev/null \
    | openssl x509 -req -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days "$PKI_DAYS" -sha256 -extfile "$ext" -out "$out.crt.tmp" 2>/dev/null; then
    rm -f "$ext"
    util::die "failed to sign the certificate $out.crt ($subject)"
  fi
  rm -f "$ext"
  mv "$out.crt.tmp" "$out.crt"
}

# pki::ensure_control_plane makes the CA, the apiserver's certs, the SA keys and the component clients.
pki::ensure_control_plane() {
  local d; d=$(pki::dir)
  pki::ensure_ca
  pki::ensure_cert "$d/apiserver" "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:10.96.0.1,IP:$CONTROLPLANE_HOST_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  pki::ensure_cert "$d/apiserver-kubelet-client" "/CN=kube-apiserver-kubelet-client" clientAuth
  pki::_key "$d/sa.key"
  if [[ ! -s $d/sa.pub ]]; then
    openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null || util::die "failed to write sa.pub"
  fi
  pki::ensure_cert "$d/admin" "/O=system:masters/CN=kubernetes-admin" clientAuth
  pki::ensure_cert "$d/controllers" "/CN=system:rudder:controllers" clientAuth
  pki::ensure_cert "$d/scheduler" "/CN=system:kube-scheduler" clientAuth
  pki::ensure_cert "$d/service-proxy" "/CN=system:kube-proxy" clientAuth
  pki::write_kubeconfig "$RUDDER_HOME/admin.kubeconfig" kubernetes-admin "$d/admin"
  pki::write_kubeconfig "$RUDDER_HOME/controllers.kubeconfig" system:rudder:controllers "$d/controllers"
  pki::write_kubeconfig "$RUDDER_HOME/scheduler.kubeconfig" system:kube-scheduler "$d/scheduler"
  pki::write_kubeconfig "$RUDDER_HOME/service-proxy.kubeconfig" system:kube-proxy "$d/service-proxy"
}

# pki::ensure_node NODE IP makes the node agent's client and serving certs and its kubeconfig.
pki::ensure_node() {
  local node=$1 ip=$2 nd="$RUDDER_HOME/nodes/$1"
  pki::ensure_cert "$nd/pki/kubelet-client" "/O=system:nodes/CN=system:node:$node" clientAuth
  pki::ensure_cert "$nd/pki/kubelet-serving" "/O=system:nodes/CN=system:node:$node" serverAuth "IP:$ip,DNS:$node"
  pki::write_kubeconfig "$nd/kubeconfig" "system:node:$node" "$nd/pki/kubelet-client"
}

# pki::write_kubeconfig FILE USER CERT_PREFIX writes a self-contained kubeconfig (certificates embedded,
# so it can be copied anywhere).
pki::write_kubeconfig() {
  local file=$1 user=$2 cert=$3 d; d=$(pki::dir)
  : > "$file.tmp" && chmod 600 "$file.tmp"
  cat > "$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rudder
  cluster:
    server: $PKI_APISERVER_URL
    certificate-authority-data: $(base64 -w0 < "$d/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$cert.crt")
    client-key-data: $(base64 -w0 < "$cert.key")
contexts:
- name: $user@rudder
  context:
    cluster: rudder
    user: $user
current-context: $user@rudder
EOF
  mv "$file.tmp" "$file"
}
