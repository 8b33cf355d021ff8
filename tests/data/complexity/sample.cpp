#include <vector>
#include <string>
namespace geo {
class Box {
public:
    Box(int w, int h) : w_(w), h_(h) { if (w < 0 || h < 0) { w_ = h_ = 0; } }
    int area() const { return w_ > 0 && h_ > 0 ? w_ * h_ : 0; }
    bool contains(int x, int y) const;
private:
    int w_, h_;
};
bool Box::contains(int x, int y) const {
    for (int i = 0; i < 2; ++i) {
        if (x < 0) return false;
    }
    while (y > h_) { --y; }
    return x < w_ && y < h_;
}
template <typename T>
T largest(const std::vector<T>& xs) {
    T best{};
    for (const auto& x : xs) { if (x > best) best = x; }
    return best;
}
}  // namespace geo
int classify(const std::string& s) {
    switch (s.size()) {
    case 0: return 0;
    case 1:
    case 2: return 1;
    default: break;
    }
    try {
        return std::stoi(s);
    } catch (...) {
        return -1;
    }
}
int main() {
    geo::Box b(2, 3);
#ifdef DEBUG
    if (b.area() == 6) return 1;
#endif
    return b.contains(1, 1) ? 0 : classify("12");
}
