#!/usr/bin/env bash
# The base images the Dockerfile starts from, debian:bookworm and debian:bookworm-slim, made
# without a registry: debootstrap (variant minbase) from the Debian mirror this machine's apt
# sources name, then `docker import`. An image that already exists is kept.
#
#   deploy/docker/base-images.sh      as root; $DOCKER names the client (default: docker),
#                                     $DOCKER_HOST the engine; $SRN_DEBIAN_MIRROR overrides the
#                                     mirror (and $SRN_DEBIAN_SECURITY_MIRROR the security one)
#
# Both images get the mirror's bookworm and bookworm-updates suites and, when the machine's
# sources name one, bookworm-security. The slim image, like Debian's, drops documentation and
# translations and keeps dpkg from installing them again (the same exclusions).
set -euo pipefail
docker=${DOCKER:-docker}
suite=bookworm
full=debian:$suite
slim=debian:$suite-slim

have_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }
if have_image "$full" && have_image "$slim"; then
  echo "base-images.sh: $full and $slim present"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "base-images.sh: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || {
  echo "base-images.sh: no debootstrap (deploy/install-deps.sh docker)" >&2
  exit 1
}

# The first enabled "deb" source of suite $1 in the machine's apt sources (deb822 .sources files
# and one-line .list files), http(s) only.
apt_uri() {
  local d=/etc/apt f
  for f in "$d"/sources.list.d/*.sources "$d"/sources.list "$d"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources)
        awk -v s="$1" 'BEGIN { RS = "" } {
          split("", v); n = split($0, lines, "\n")
          for (i = 1; i <= n; i++)
            if (lines[i] !~ /^#/ && match(lines[i], /^[A-Za-z-]+:/))
              v[tolower(substr(lines[i], 1, RLENGTH - 1))] = " " substr(lines[i], RLENGTH + 1) " "
          if (v["types"] ~ / deb / && v["suites"] ~ (" " s " ") && v["enabled"] !~ / no /) {
            split(v["uris"], u, " "); print u[1]
          }
        }' "$f"
        ;;
      *)
        awk -v s="$1" '$1 == "deb" {
          i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == s) print $i
        }' "$f"
        ;;
    esac
  done | grep -E -m1 '^https?://' || true
}

mirror=${SRN_DEBIAN_MIRROR:-$(apt_uri "$suite")}
security=${SRN_DEBIAN_SECURITY_MIRROR:-$(apt_uri "$suite-security")}
[ -n "$mirror" ] || {
  echo "base-images.sh: no http(s) source of '$suite' in the apt sources; set SRN_DEBIAN_MIRROR" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
start=$SECONDS
echo "base-images.sh: debootstrap --variant=minbase $suite from $mirror"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
rm -f "$root/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
    "$mirror" "$suite" "$suite"
  printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  if [ -n "$security" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$suite"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  fi
} >"$root/etc/apt/sources.list.d/debian.sources"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
# No hostname, resolver or machine id of this machine in the image (the engine provides them).
: >"$root/etc/hostname"
: >"$root/etc/resolv.conf"
: >"$root/etc/machine-id"

# As Debian's images: the default PATH, bash as the command.
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
import() {
  tar --numeric-owner --xattrs -C "$root" -c . |
    "$docker" import --change "ENV PATH=$path" --change 'CMD ["bash"]' \
      --message "debootstrap --variant=minbase $suite" - "$1" >/dev/null
  echo "base-images.sh: imported $1 ($(du -sh "$root" | cut -f1))"
}
have_image "$full" || import "$full"

# Slim: what Debian's slim images exclude (docs, man pages, translations; copyrights stay).
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/*
have_image "$slim" || import "$slim"
echo "base-images.sh: done in $((SECONDS - start)) s"
