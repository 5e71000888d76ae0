# shellcheck shell=bash
# Shared by guests/build-default, guests/build-rootfs and tools/emuhost/run:
# fetching Debian packages without installing them, cheap "nothing changed"
# checks, module load order, and packing a busybox initramfs. Source it; it
# defines functions only.

# One-line error and exit; callers pass what failed and why.
die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# Install the Debian packages (by package name) that are missing.
# dpkg -s is cheap, so a machine that has them pays nothing.
need_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) -eq 0 ]] || die "missing packages ${missing[*]}; run as root or install them"
	echo "${0##*/}: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
}

# A fingerprint of the apt package lists: candidate versions can only change
# when these change (apt-get update), and stat is far cheaper than apt-cache.
apt_lists_fingerprint() {
	stat -c '%n %s %Y' /var/lib/apt/lists/*Packages* /etc/apt/preferences* 2>/dev/null || true
}

# Candidate version of a package, as apt-get would pick it.
candidate_version() {
	local version
	version=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
	[[ -n $version && $version != "(none)" ]] ||
		die "package $1 has no candidate version (apt-get update?)"
	echo "$version"
}

# The versioned kernel package that the linux-image-amd64 metapackage's
# candidate depends on, e.g. linux-image-6.1.0-56-amd64.
kernel_package() {
	local name
	name=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*-amd64\).*/\1/p' | head -n 1)
	[[ -n $name ]] || die "cannot find the kernel package linux-image-amd64 depends on"
	echo "$name"
}

# fetch_deb CACHE PACKAGE VERSION: print the path of the .deb, downloading it
# into CACHE/PACKAGE/VERSION/ unless already there.
fetch_deb() {
	local dir="$1/$2/$3" deb
	mkdir -p "$dir"
	deb=$(find "$dir" -maxdepth 1 -name '*.deb' | head -n 1)
	if [[ -z $deb ]]; then
		echo "${0##*/}: downloading $2 $3" >&2
		# Root cannot hand the directory to apt's sandbox user; no need to.
		(cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$2=$3" >&2) ||
			die "apt-get download $2=$3 failed"
		deb=$(find "$dir" -maxdepth 1 -name '*.deb' | head -n 1)
		[[ -n $deb ]] || die "apt-get download $2=$3 left no .deb in $dir"
	fi
	echo "$deb"
}

# pack_initramfs DIR OUTPUT: a gzip'd newc cpio of DIR, owned by root, in a
# stable order, written atomically.
pack_initramfs() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$2.tmp" ||
		die "packing $1 into $2 failed"
	mv "$2.tmp" "$2"
}

# busybox_tree BUSYBOX DIR: DIR gets bin/busybox and one symlink per applet,
# plus the directories an init needs to mount on.
busybox_tree() {
	local applet
	mkdir -p "$2"/{bin,sbin,dev,proc,sys,tmp,run,etc,root,usr/bin,usr/sbin}
	cp "$1" "$2/bin/busybox"
	for applet in $("$1" --list); do
		[[ -e $2/bin/$applet ]] || ln -s busybox "$2/bin/$applet"
	done
	# The kernel opens /dev/console for init before devtmpfs is mounted.
	if [[ ! -e $2/dev/console && $(id -u) -eq 0 ]]; then
		mknod -m 600 "$2/dev/console" c 5 1
	fi
}

# module_load_order MODULES_DIR NAME...: the module files (paths relative to
# MODULES_DIR) that loading NAME... with insmod needs, each once, every
# module after the modules it depends on, as MODULES_DIR/modules.dep says.
# NAME is a module file name without .ko; dashes and underscores are alike.
# Soft dependencies (modules.softdep) are not followed: name them.
module_load_order() {
	local dir=$1 path deps name
	shift
	local -A dep_of=() path_of=() seen=()
	local order=()
	[[ -f $dir/modules.dep ]] || die "no modules.dep in $dir"
	while IFS=: read -r path deps; do
		dep_of[$path]=$deps
		name=${path##*/}
		name=${name%.ko*}
		path_of[${name//-/_}]=$path
	done <"$dir/modules.dep"
	__module_load_order_add() {
		local dep
		[[ -z ${seen[$1]-} ]] || return 0
		seen[$1]=1
		for dep in ${dep_of[$1]}; do
			__module_load_order_add "$dep"
		done
		order+=("$1")
	}
	for name in "$@"; do
		path=${path_of[${name//-/_}]-}
		[[ -n $path ]] || die "module $name is not in $dir/modules.dep"
		__module_load_order_add "$path"
	done
	unset -f __module_load_order_add
	printf '%s\n' "${order[@]}"
}
