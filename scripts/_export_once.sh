# Shared by bench_local.sh and bench_readme.sh (sourced, not run): export a pipeline once.
#   export_once NAME ov_spec.export-arguments...
# exports into $OUT/pipelines/NAME with $PY, and reuses that folder afterwards (FORCE=1 re-exports).
export_once() {
    local name=$1
    shift
    local dir="$OUT/pipelines/$name" tag
    tag="[$(basename "$0" .sh)]"
    if [[ -f "$dir/ov_spec.json" && -z "${FORCE:-}" ]]; then
        echo "$tag $name: reusing $dir" >&2
        return
    fi
    echo "$tag $name: exporting into $dir" >&2
    "$PY" -m ov_spec.export "$@" --output "$dir" --force --quiet
}
