#!/bin/sh
# fetch.sh: download the full MNIST and CIFAR-10 datasets for sectorlab.
#
#     sh data/fetch.sh DESTDIR
#
# Puts the four official MNIST files (gzip, exactly as published) in
# DESTDIR/mnist/ and the six CIFAR-10 binary batches in
# DESTDIR/cifar-10-batches-bin/, and checks every file against its published
# md5 sum.  Files already there with the right sum are kept, so running it
# again only fetches what is missing.  Downloads land under a temporary name
# and are renamed only once verified: an interrupted run never leaves a
# half-written file under a final name.
#
# Needs curl or wget, md5sum (or BSD md5), gzip and tar.  To use a local
# mirror, set SECTORLAB_MNIST_MIRROR (a URL prefix holding the four .gz files)
# or SECTORLAB_CIFAR_URL (the URL of cifar-10-binary.tar.gz); file:// works
# with curl.
set -u

MNIST_MIRRORS=${SECTORLAB_MNIST_MIRROR:-"https://ossci-datasets.s3.amazonaws.com/mnist http://yann.lecun.com/exdb/mnist"}
CIFAR_URL=${SECTORLAB_CIFAR_URL:-"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"}
CIFAR_TAR_MD5=c32a1d4ab5d03f1284b67883e8d87530

# name and md5 of each file, as published by the datasets' authors.
MNIST_FILES="
train-images-idx3-ubyte.gz f68b3c2dcbeaaa9fbdd348bbdeb94873
train-labels-idx1-ubyte.gz d53e105ee54ea40749a09fcbcd1e9432
t10k-images-idx3-ubyte.gz 9fb629c4189551a2d022fa330f9573f3
t10k-labels-idx1-ubyte.gz ec29112dd5afa0611ce80d1b7f02629c"
CIFAR_FILES="
data_batch_1.bin 5dd7e06a14cb22eb9f671a540d1b7c25
data_batch_2.bin 5ea93a67294ea407fff1d09f752e9692
data_batch_3.bin 942cd6a4bcdd0dd3c604fbe906cb4421
data_batch_4.bin ae636b3ba5c66a11e91e8cb52e771fcb
data_batch_5.bin 53f37980c15c3d472c316c40844f3f0d
test_batch.bin 803d5f7f4d78ea53de84dbe85f74fb6d"

say() { printf 'fetch.sh: %s\n' "$*" >&2; }

if [ $# -ne 1 ] || [ -z "$1" ]; then
	say "usage: sh data/fetch.sh DESTDIR"
	exit 2
fi
DEST=$1

if command -v curl >/dev/null 2>&1; then
	GET=curl
elif command -v wget >/dev/null 2>&1; then
	GET=wget
else
	say "neither curl nor wget is installed"
	exit 1
fi
if command -v md5sum >/dev/null 2>&1; then
	MD5=md5sum
elif command -v md5 >/dev/null 2>&1; then
	MD5=md5
else
	say "neither md5sum nor md5 is installed"
	exit 1
fi

# Temporary files and folders of this run, removed however it ends.
TMP_FILE=""
TMP_DIR=""
cleanup() {
	[ -n "$TMP_FILE" ] && rm -f "$TMP_FILE"
	[ -n "$TMP_DIR" ] && rm -rf "$TMP_DIR"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

download() { # URL FILE
	if [ "$GET" = curl ]; then
		curl -fsSL --connect-timeout 20 --retry 2 -o "$2" "$1"
	else
		wget -q --timeout=20 --tries=2 -O "$2" "$1"
	fi
}

md5_of() { # FILE
	if [ "$MD5" = md5sum ]; then
		md5sum "$1" | cut -d ' ' -f 1
	else
		md5 -q "$1"
	fi
}

has_md5() { # FILE MD5
	[ -f "$1" ] && [ "$(md5_of "$1")" = "$2" ]
}

# One MNIST file into $DEST/mnist/, from the first mirror that has it intact.
fetch_mnist_file() { # NAME MD5
	dest="$DEST/mnist/$1"
	if has_md5 "$dest" "$2"; then
		say "have $dest"
		return 0
	fi
	TMP_FILE="$dest.$$.tmp"
	for mirror in $MNIST_MIRRORS; do
		say "fetching $mirror/$1"
		if download "$mirror/$1" "$TMP_FILE"; then
			sum=$(md5_of "$TMP_FILE")
			if [ "$sum" = "$2" ]; then
				mv -f "$TMP_FILE" "$dest" || return 1
				TMP_FILE=""
				return 0
			fi
			say "$mirror/$1 has md5 $sum, expected $2"
		fi
		rm -f "$TMP_FILE"
	done
	TMP_FILE=""
	return 1
}

# The lists are walked with set -- rather than a pipe, so that everything
# runs in this shell and the cleanup trap sees every temporary file.
fetch_mnist() {
	mkdir -p "$DEST/mnist" || return 1
	# shellcheck disable=SC2086 # split into name, md5 pairs on purpose
	set -- $MNIST_FILES
	while [ $# -ge 2 ]; do
		if ! fetch_mnist_file "$1" "$2"; then
			rmdir "$DEST/mnist" 2>/dev/null # only if nothing is in it
			return 1
		fi
		shift 2
	done
}

cifar_complete() { # DIR
	dir_=$1
	# shellcheck disable=SC2086 # split into name, md5 pairs on purpose
	set -- $CIFAR_FILES
	while [ $# -ge 2 ]; do
		has_md5 "$dir_/$1" "$2" || return 1
		shift 2
	done
}

# The CIFAR-10 archive, checked, unpacked beside the destination, each batch
# checked again, then moved into place.
fetch_cifar() {
	dir="$DEST/cifar-10-batches-bin"
	if cifar_complete "$dir"; then
		say "have $dir/ (all six batches verified)"
		return 0
	fi
	mkdir -p "$DEST" || return 1
	TMP_DIR="$DEST/cifar-10.$$.tmp"
	mkdir -p "$TMP_DIR" || return 1
	tarball="$TMP_DIR/cifar-10-binary.tar.gz"
	say "fetching $CIFAR_URL"
	download "$CIFAR_URL" "$tarball" || return 1
	sum=$(md5_of "$tarball")
	if [ "$sum" != "$CIFAR_TAR_MD5" ]; then
		say "$CIFAR_URL has md5 $sum, expected $CIFAR_TAR_MD5"
		return 1
	fi
	(cd "$TMP_DIR" && gzip -dc cifar-10-binary.tar.gz | tar -xf -) || return 1
	if ! cifar_complete "$TMP_DIR/cifar-10-batches-bin"; then
		say "the archive's batch files do not match their published md5 sums"
		return 1
	fi
	mkdir -p "$dir" || return 1
	for f in "$TMP_DIR"/cifar-10-batches-bin/*; do
		mv -f "$f" "$dir/" || return 1
	done
	rm -rf "$TMP_DIR"
	TMP_DIR=""
}

failed=""
fetch_mnist || failed="$failed MNIST"
fetch_cifar || failed="$failed CIFAR-10"
cleanup

if [ -n "$failed" ]; then
	say "could not download:$failed."
	say "Without internet access, copy the datasets from another machine and point"
	say "sectorlab at them: --data-dir DIR or SECTORLAB_DATA=DIR, where DIR holds"
	say "mnist/ (the four IDX files) and cifar-10-batches-bin/ (data_batch_1.bin ..."
	say "test_batch.bin), each file plain or .gz."
	exit 1
fi
say "done: MNIST in $DEST/mnist/, CIFAR-10 in $DEST/cifar-10-batches-bin/"
