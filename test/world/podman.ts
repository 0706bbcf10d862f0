/**
 * How Podman is invoked on machines like CI's: runc as the runtime (crun fails there) and explicit
 * ulimits (the defaults fail). Shared by the image build, the kubelet simulator and image tests.
 */
export const PODMAN_GLOBAL_ARGS = ["--runtime", "runc"];
export const PODMAN_RUN_ARGS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024"];
/** The runner image built by `make image` (runner-image/build.sh). */
export const RUNNER_IMAGE = process.env.RUNNER_IMAGE ?? "localhost/agentfactory-runner:dev";
