/// Dropout on each side's embedding of matrix factorisation while training, as Keras'
/// `Dropout` after each `Embedding` of the RStudio and fastai write-ups: entry j of the user's
/// row is kept with probability 1 - user rate and then scaled by 1 / (1 - user rate), and
/// independently so for the item's row ("inverted" dropout, so prediction needs no rescaling).
///
/// Both trainers use only the product of the two masks, `c`: the dot product of the dropped
/// rows is Σ c_j p_j q_j, and its gradients are c ⊙ q on the user's row and c ⊙ p on the
/// item's. The masks come from `DropoutMask`'s counter-based hash of (seed, epoch, rating
/// position), so they do not depend on the thread count or on the order of computation.
public struct EmbeddingDropout: Sendable {
    public let userRate, itemRate: Float
    private let userThreshold, itemThreshold: UInt32
    private let userScale, itemScale: Float
    private let epochKey: UInt64

    /// The rates of both sides (each in [0, 1)); `seed` and `epoch` key the masks.
    public init(userRate: Float, itemRate: Float, seed: UInt64 = 0, epoch: Int = 0) {
        self.userRate = userRate
        self.itemRate = itemRate
        userThreshold = DropoutMask.threshold(keep: 1 - userRate)
        itemThreshold = DropoutMask.threshold(keep: 1 - itemRate)
        userScale = 1 / (1 - userRate)
        itemScale = 1 / (1 - itemRate)
        epochKey = DropoutMask.key(seed: seed ^ 0xD809_0D80_9D80_9D80, node: epoch)
    }

    /// No dropout on either side.
    public static let none = EmbeddingDropout(userRate: 0, itemRate: 0)

    public var isActive: Bool { userRate > 0 || itemRate > 0 }

    /// The same rates with masks keyed for `epoch` of a run seeded with `seed`.
    public func keyed(seed: UInt64, epoch: Int) -> EmbeddingDropout {
        EmbeddingDropout(userRate: userRate, itemRate: itemRate, seed: seed, epoch: epoch)
    }

    public static func validate(user: Double, item: Double) throws {
        for (name, rate) in [("user", user), ("item", item)] {
            guard rate.isFinite, rate >= 0, rate <= 0.99 else {
                throw CoreError.invalid("the \(name) embedding's dropout rate must be a finite number in [0, 0.99], got \(rate)")
            }
        }
    }

    /// Floats a caller allocates for `combinedMask` of k-wide rows: two masks padded to 8.
    public static func scratchCount(k: Int) -> Int { 2 * ((k + 7) & ~7) }

    /// Writes the product of the user's and the item's masks for the rating at `position` to
    /// `mask[0..<k]` (`mask` holds `scratchCount(k:)` floats; its second half is scratch).
    @inline(__always)
    public func combinedMask(_ mask: UnsafeMutablePointer<Float>, k: Int, position: Int) {
        let padded = (k + 7) & ~7
        let example = DropoutMask.key(seed: epochKey, node: position)
        if userRate > 0 {
            DropoutMask.fill(mask, width: k, key: DropoutMask.key(seed: example, node: 0), threshold: userThreshold,
                             scale: userScale)
        } else {
            mask.update(repeating: 1, count: padded)
        }
        if itemRate > 0 {
            let other = mask + padded
            DropoutMask.fill(other, width: k, key: DropoutMask.key(seed: example, node: 1), threshold: itemThreshold,
                             scale: itemScale)
            for j in 0..<k { mask[j] *= other[j] }
        }
    }
}
