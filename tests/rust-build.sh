# The settings of tests/run's one Rust build, sourced by it and by tests/rig/node/tool-image.sh:
# the host's own triple named as the target, with a static C runtime. The tests then run the very
# binary the tool's image holds (a static one, as deploy/image/Dockerfile builds), and the image
# needs no second build. Naming the target keeps the flag off build scripts and proc-macros,
# which cannot be static; artifacts go to target/<triple>/debug. Sourced, not run.
CARGO_BUILD_TARGET=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_BUILD_TARGET
export RUSTFLAGS="-C target-feature=+crt-static"
