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
        // Hummingbird's own dependencies, named for the server's connection handlers and their tests.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        .target(name: "GGUF", swiftSettings: fast),
        .target(name: "Kernels", dependencies: ["CKernels", "GGUF"], swiftSettings: fast),
        .target(name: "Engine", dependencies: ["GGUF", "Kernels"], swiftSettings: fast),
        .target(name: "Assets", swiftSettings: fast),
        .target(name: "Relay", dependencies: ["Engine"], resources: [.copy("Cues"), .copy("Heads")], swiftSettings: fast),
        .target(name: "Eval", dependencies: ["Engine", "Relay", "Assets"], swiftSettings: fast),
        .target(name: "Remote", dependencies: ["Engine", "Relay"], swiftSettings: fast),
        // Testable in release builds too: ServerTests check request parsing and planning directly.
        .target(name: "Server", dependencies: ["Engine", "Relay", .product(name: "Hummingbird", package: "hummingbird"),
                                               .product(name: "HummingbirdCore", package: "hummingbird"),
                                               .product(name: "NIOCore", package: "swift-nio"),
                                               .product(name: "NIOHTTPTypes", package: "swift-nio-extras")],
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
        .testTarget(name: "ServerTests", dependencies: ["Server", "Relay", "Engine", "Assets",
                                                        .product(name: "NIOEmbedded", package: "swift-nio"),
                                                        .product(name: "NIOHTTP1", package: "swift-nio"),
                                                        .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                                                        .product(name: "HTTPTypes", package: "swift-http-types")]),
    ],
    swiftLanguageModes: [.v5]
)
