// swift-tools-version:6.0
import PackageDescription

// Everything is built optimised for the CPU it is built on, also in debug builds, so that tests
// with real models run at a usable speed. Code that parses files, flags, requests or replies keeps
// Swift's overflow and bounds checks; only the kernels, whose inputs the model loader has checked,
// drop them (README: "What runs unchecked"). Kernels pick AVX2 or AVX-512 VNNI at run time.
let checked: [SwiftSetting] = [.unsafeFlags(["-O", "-wmo", "-target-cpu", "native"])]
let unchecked: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo", "-target-cpu", "native"])]

let package = Package(
    name: "Relay",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "relay", targets: ["RelayCLI"]),
        .executable(name: "relay-fuzz", targets: ["RelayFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // async-http-client for the remote large model; the rest are Hummingbird's own dependencies,
        // named for the server's connection handlers and their tests.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // SHA-256 for model identities and file checks (already in the graph through swift-nio-extras).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // The server's /metrics: swift-metrics types over a swift-prometheus registry.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        .target(name: "GGUF", swiftSettings: checked),
        .target(name: "Kernels", dependencies: ["CKernels", "GGUF"], swiftSettings: unchecked),
        .target(name: "Engine", dependencies: ["GGUF", "Kernels", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: checked),
        // The one progress bar of every long command (fetch, sha256 checks, eval, calibrate, train-relay).
        .target(name: "Progress", swiftSettings: checked),
        .target(name: "Assets", dependencies: ["Progress", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: checked),
        // The shipped cue files and call heads, compiled in (ShippedFiles.swift lists them). A target of
        // their own: the 81 KB head as a byte-array literal takes about 17 s to compile, paid only when
        // a shipped file changes.
        .target(name: "ShippedFiles", exclude: ["Cues/README.md", "Heads/README.md"],
                resources: [.embedInCode("Cues/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.json"), .embedInCode("Cues/SmolLM2-135M-Instruct.Q4_1.json"),
                            .embedInCode("Heads/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.json")]),
        .target(name: "Relay", dependencies: ["Engine", "GGUF", "ShippedFiles"], swiftSettings: checked),
        .target(name: "Eval", dependencies: ["Engine", "Relay", "Assets", "Progress"], swiftSettings: checked),
        // Offline work (RelayGen's cue calibration, RelayLLM's head training): nothing at inference depends on it.
        .target(name: "Training", dependencies: ["Engine", "Relay", "Eval", "Progress"], swiftSettings: checked),
        .target(name: "Remote", dependencies: ["Engine", "Relay", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                                              .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")],
                swiftSettings: checked),
        // Testable in release builds too: ServerTests check request parsing and planning directly.
        .target(name: "Server", dependencies: ["Engine", "Relay", .product(name: "Hummingbird", package: "hummingbird"),
                                               .product(name: "HummingbirdCore", package: "hummingbird"),
                                               .product(name: "NIOCore", package: "swift-nio"),
                                               .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                                               .product(name: "CoreMetrics", package: "swift-metrics"),
                                               .product(name: "Prometheus", package: "swift-prometheus")],
                resources: [.embedInCode("Resources/openapi.json")],
                swiftSettings: [.unsafeFlags(["-enable-testing"])]),
        .executableTarget(
            name: "RelayCLI",
            dependencies: ["Engine", "Relay", "Eval", "Training", "Kernels", "GGUF", "Assets", "Progress", "Remote", "Server", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: checked),
        // Fuzz targets (scripts/fuzz.sh builds relay-fuzz with libFuzzer; FuzzTests replay the corpus).
        .target(name: "FuzzTargets", dependencies: ["GGUF", "Engine", "Kernels", "Relay", "Eval", "Server"], swiftSettings: checked),
        .executableTarget(name: "RelayFuzz", dependencies: ["FuzzTargets"], swiftSettings: checked),
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "TestSupport"], swiftSettings: checked),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels", "GGUF"], swiftSettings: checked),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Assets", "TestSupport", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: checked),
        .testTarget(name: "RelayTests", dependencies: ["Relay", "ShippedFiles", "Assets", "TestSupport"], swiftSettings: checked),
        .testTarget(name: "EvalTests", dependencies: ["Eval", "Relay", "Progress", "TestSupport"], swiftSettings: checked),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Relay", "Engine", "Eval", "Assets", "Progress", "TestSupport"], swiftSettings: checked),
        .testTarget(name: "CLITests", dependencies: ["RelayCLI", "Relay", "Engine", "Server", "TestSupport"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "Relay", "Engine", "Assets",
                                                        .product(name: "NIOEmbedded", package: "swift-nio"),
                                                        .product(name: "NIOHTTP1", package: "swift-nio"),
                                                        .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                                                        .product(name: "HTTPTypes", package: "swift-http-types")]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets", "Engine", "TestSupport"], swiftSettings: checked),
        // The fake misbehaving backend and `relay serve` (built before these tests) against it.
        .testTarget(name: "RemoteTests", dependencies: ["Remote", "Relay", "Engine", "Assets", "TestSupport", "RelayCLI"]),
    ],
    swiftLanguageModes: [.v5]
)
