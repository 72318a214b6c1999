// swift-tools-version:6.0
import PackageDescription

// Engine code is built optimised for the CPU it is built on, also in debug builds, so that
// tests with real models run at a usable speed. Kernels pick AVX2 or AVX-512 VNNI at run time.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo", "-target-cpu", "native"])]

let package = Package(
    name: "Relay",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "relay", targets: ["RelayCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        .target(name: "GGUF", swiftSettings: fast),
        .target(name: "Kernels", dependencies: ["CKernels", "GGUF"], swiftSettings: fast),
        .target(name: "Engine", dependencies: ["GGUF", "Kernels"], swiftSettings: fast),
        .target(name: "Assets", swiftSettings: fast),
        .target(name: "Relay", dependencies: ["Engine"], resources: [.copy("Cues"), .copy("Heads")], swiftSettings: fast),
        .target(name: "Eval", dependencies: ["Engine", "Relay", "Assets"], swiftSettings: fast),
        .target(name: "Remote", dependencies: ["Engine", "Relay", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                                              .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")],
                swiftSettings: fast),
        // Testable in release builds too: ServerTests check request parsing and planning directly.
        .target(name: "Server", dependencies: ["Engine", "Relay", .product(name: "Hummingbird", package: "hummingbird")],
                swiftSettings: [.unsafeFlags(["-enable-testing"])]),
        .executableTarget(
            name: "RelayCLI",
            dependencies: ["Engine", "Relay", "Eval", "Kernels", "GGUF", "Assets", "Remote", "Server", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fast),
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "TestSupport"], swiftSettings: fast),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels", "GGUF"], swiftSettings: fast),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Assets", "TestSupport"], swiftSettings: fast),
        .testTarget(name: "RelayTests", dependencies: ["Relay", "Assets", "TestSupport"], swiftSettings: fast),
        .testTarget(name: "EvalTests", dependencies: ["Eval", "TestSupport"], swiftSettings: fast),
        .testTarget(name: "CLITests", dependencies: ["RelayCLI", "TestSupport"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "Relay", "Engine", "Assets"]),
        // The fake misbehaving backend and `relay serve` (built before these tests) against it.
        .testTarget(name: "RemoteTests", dependencies: ["Remote", "Relay", "Engine", "Assets", "TestSupport", "RelayCLI"]),
    ],
    swiftLanguageModes: [.v5]
)
