#!/bin/sh
set -u
while true; do
  if kubectl get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address} {.spec.podCIDR}{"\n"}{end}' >/tmp/nodes; then
    while read -r ip cidr; do
      [ -n "$cidr" ] || continue
      if [ "$ip" = "$HOST_IP" ]; then
        printf '%s' '{"cniVersion":"0.3.1","name":"kindnet","plugins":[{"type":"ptp","ipMasq":false,"ipam":{"type":"host-local","dataDir":"/run/cni-ipam-state","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"'"$cidr"'"}]]},"mtu":1500},{"type":"portmap","capabilities":{"portMappings":true}}]}' >/tmp/cni.conflist
        if ! cmp -s /tmp/cni.conflist /etc/cni/net.d/10-kindnet.conflist; then
          cp /tmp/cni.conflist /etc/cni/net.d/.10-kindnet.tmp
          mv /etc/cni/net.d/.10-kindnet.tmp /etc/cni/net.d/10-kindnet.conflist
          echo "CNI config for $cidr"
        fi
      else
        ip route replace "$cidr" via "$ip"
      fi
    done </tmp/nodes
  fi
  sleep 1
done
