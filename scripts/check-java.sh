#!/bin/sh
# pyspark 4 needs Java 17 or newer. Exit 0 when it is there; otherwise say how to install
# it, and install it when running as root on a machine with apt-get (fresh containers).
set -u

java_bin() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        echo "$JAVA_HOME/bin/java"
    else
        command -v java || true
    fi
}

java_major() {  # "17.0.15" -> 17, "1.8.0_292" -> 8, "21" -> 21, nothing -> 0
    bin=$(java_bin)
    [ -n "$bin" ] || { echo 0; return; }
    version=$("$bin" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
    major=${version%%.*}
    [ "$major" = "1" ] && major=$(echo "$version" | cut -d. -f2)
    case "$major" in ''|*[!0-9]*) echo 0 ;; *) echo "$major" ;; esac
}

major=$(java_major)
[ "$major" -ge 17 ] && exit 0

if [ "$major" -eq 0 ]; then found="no java"; else found="Java $major"; fi
echo "Spark (pyspark 4) needs Java 17 or newer; found $found. Install it with:" >&2
echo "    sudo apt-get install -y openjdk-17-jre-headless" >&2
echo "(or any JDK/JRE 17+, with JAVA_HOME pointing at it)" >&2
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Running as root with apt-get: installing openjdk-17-jre-headless now." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq openjdk-17-jre-headless >&2 || exit 1
    major=$(java_major)
    [ "$major" -ge 17 ] && exit 0
    echo "java is still older than 17 (found $major); set JAVA_HOME to a Java 17+" >&2
fi
exit 1
