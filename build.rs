//! Compiles the Argo CD `version.VersionService` contract (proto/version.proto) with a vendored
//! protoc, so a fresh machine needs no system protobuf compiler.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY-free: build scripts are single-threaded; tonic-prost-build reads PROTOC from the env.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/version.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/version.proto");
    Ok(())
}
