// swift-tools-version:5.9
// embedrec: a collaborative-filtering core in Swift behind a C ABI.
//
// Targets:
// - EmbedrecCore: models and trainers. Pure Swift (stdlib, Dispatch, Synchronization);
//   no Foundation, so the shared library stays small and self-contained.
// - CEmbedrec: the hand-written public C header (`include/embedrec.h`). Its one C file
//   compiles the header as C so a broken header fails the build.
// - EmbedrecCAPI: the `@_cdecl` exports that implement that header; the only place where
//   pointers from a foreign caller are turned into Swift values, so every check lives here.
// - CEmbedrecShims: header-only C the core needs and Swift lacks (prefetch hints, a vector
//   square root, a multiply-add fused where the CPU has one).
import PackageDescription

let package = Package(
    name: "embedrec",
    products: [
        .library(name: "embedrec", type: .dynamic, targets: ["EmbedrecCAPI"]),
    ],
    targets: [
        // Each target's README.md says what it owns (documentation, not part of the build).
        .target(name: "CEmbedrecShims", exclude: ["README.md"]),
        .target(name: "EmbedrecCore", dependencies: ["CEmbedrecShims"], exclude: ["README.md"]),
        .target(name: "CEmbedrec", exclude: ["README.md"]),
        .target(name: "EmbedrecCAPI", dependencies: ["EmbedrecCore"], exclude: ["README.md"]),
        .testTarget(name: "EmbedrecCoreTests", dependencies: ["EmbedrecCore"]),
        .testTarget(name: "EmbedrecCAPITests", dependencies: ["EmbedrecCAPI", "CEmbedrec"]),
    ]
)
