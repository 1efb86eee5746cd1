#!/usr/bin/env bash
# Debian packages radsynth's tests use: dicom3tools (dciodvfy) and dcmtk (dcm2pnm, dcmdjpeg) check
# the DICOM files radsynth writes and decode JPEG independently of pydicom; chromium and
# chromium-driver open the HTML reports (evaluate, probe) in a real headless browser. Installed
# when missing and when we may (root with apt-get); tests that need them are skipped, saying so,
# when they are absent.
set -u
need=()
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
{ command -v dcm2pnm && command -v dcmdjpeg; } >/dev/null 2>&1 || need+=(dcmtk)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${need[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null \
    || echo "warning: could not install ${need[*]}; the tests that need them will be skipped"
else
  echo "note: ${need[*]} not installed (needs root and apt-get); the tests that need them will be skipped"
fi
exit 0
