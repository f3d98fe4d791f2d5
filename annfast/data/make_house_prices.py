"""Generates house_prices.csv, the demo data set (run once; the CSV is what ships).

    python annfast/data/make_house_prices.py > annfast/data/house_prices.csv

1000 synthetic houses from a fixed formula plus Gaussian noise, seed 2024 (see README.md here).
"""
import numpy as np


def make(n: int = 1000, seed: int = 2024) -> np.ndarray:
    rng = np.random.default_rng(seed)
    area = rng.uniform(35.0, 250.0, n)                                    # m^2
    bedrooms = np.clip(np.round(area / 40.0 + rng.normal(0.0, 0.7, n)), 1, 6)
    distance = np.minimum(0.5 + rng.exponential(8.0, n), 40.0)            # km to the city centre
    age = rng.uniform(0.0, 80.0, n)                                       # years
    price = (40.0 + area * (1.0 + 2.0 * np.exp(-distance / 12.0)) + 8.0 * bedrooms
             - 1.2 * age + 0.012 * age ** 2 + rng.normal(0.0, 12.0, n))   # thousands
    return np.column_stack([area, bedrooms, distance, age, price])


if __name__ == "__main__":
    import sys

    data = make()
    sys.stdout.write("area_m2,bedrooms,distance_km,age_years,price_k\n")
    for row in data:
        sys.stdout.write(f"{row[0]:.1f},{row[1]:.0f},{row[2]:.2f},{row[3]:.1f},{row[4]:.1f}\n")
