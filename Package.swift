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
// - CEmbedrecShims: header-only C the core needs and Swift lacks (a prefetch hint).
import PackageDescription

let package = Package(
    name: "embedrec",
    products: [
        .library(name: "embedrec", type: .dynamic, targets: ["EmbedrecCAPI"]),
    ],
    targets: [
        .target(name: "CEmbedrecShims"),
        .target(name: "EmbedrecCore", dependencies: ["CEmbedrecShims"]),
        .target(name: "CEmbedrec"),
        .target(name: "EmbedrecCAPI", dependencies: ["EmbedrecCore"]),
        .testTarget(name: "EmbedrecCoreTests", dependencies: ["EmbedrecCore"]),
        .testTarget(name: "EmbedrecCAPITests", dependencies: ["EmbedrecCAPI", "CEmbedrec"]),
    ]
)
