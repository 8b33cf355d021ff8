package demo;
import java.util.*;
public class Sample {
    private final Map<String, Integer> counts = new HashMap<>();
    public Sample(List<String> words) {
        for (String w : words) {
            if (w == null || w.isEmpty()) continue;
            counts.merge(w, 1, Integer::sum);
        }
    }
    public int get(String w) { return counts.containsKey(w) ? counts.get(w) : 0; }
    public String kind(int n) {
        switch (n) {
            case 0: return "none";
            case 1: return "one";
            default: return n > 10 && n < 100 ? "many" : "lots";
        }
    }
    static int parse(String s) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            return -1;
        } finally {
            System.out.println("done");
        }
    }
    List<String> top(int k) {
        List<String> out = new ArrayList<>();
        counts.entrySet().stream().filter(e -> e.getValue() > 1 && e.getKey() != null).forEach(e -> out.add(e.getKey()));
        int i = 0;
        while (i < out.size() && i < k) { i++; }
        do { i--; } while (i > k);
        return out;
    }
    interface Visitor { void visit(String s); }
    void each(Visitor v) {
        for (String k : counts.keySet()) { if (k.length() > 3) v.visit(k); }
    }
}
