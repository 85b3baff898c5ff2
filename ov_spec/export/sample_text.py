"""A small mixed text (prose, instructions, code, dialogue) for the acceptance preview.

Used when the sources are not tiny pairs and no ``--preview-text`` is given. Kept as a Python
string so it ships with the package without package-data configuration. Written for ov_spec.
"""

SAMPLE_TEXT = '''\
The lighthouse keeper kept a notebook on the windowsill. Every morning he wrote down the direction
of the wind, the colour of the sea and the number of ships that passed before noon. Most days the
entries were short: "north-west, grey, three ships". On the days when the fog came in from the
islands he wrote more, because there was nothing else to do but listen to the horn and wait. Over
twenty years the notebooks filled two shelves, and when the light was finally automated, a student
from the university asked if she could borrow them. She found that the number of ships had fallen
by half, that the fog came earlier in the autumn than it used to, and that the keeper had drawn a
small bird in the margin every time the swallows came back in spring.

How to make a simple loaf of bread. Mix 500 grams of flour with 10 grams of salt and 7 grams of dry
yeast. Add 350 millilitres of warm water and stir until no dry flour remains. Cover the bowl and let
the dough rest for an hour. Then fold it over itself a few times with wet hands, shape it into a
ball and place it in a floured basket. Let it rise until it has almost doubled, about forty-five
minutes. Bake at 230 degrees Celsius for thirty-five to forty minutes, until the crust is deep brown
and the loaf sounds hollow when tapped on the bottom. Let it cool for at least an hour before cutting.

User: What is the difference between a list and a tuple in Python?
Assistant: Both hold an ordered sequence of items. A list is mutable: you can append, remove or
change items after it is created. A tuple is immutable: once created, its items cannot be replaced.
Because of that, tuples can be used as dictionary keys and are a good fit for fixed records such as
coordinates, while lists suit collections that grow or change.
User: Which one is faster?
Assistant: Creating and iterating over a tuple is slightly faster and it uses a little less memory,
but the difference rarely matters. Choose by meaning: use a tuple when the size and order are fixed.

def moving_average(values, window):
    """Return the averages of each run of `window` consecutive values."""
    if window <= 0:
        raise ValueError("window must be positive")
    averages = []
    total = sum(values[:window])
    averages.append(total / window)
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        averages.append(total / window)
    return averages


class Inventory:
    """Track how many of each item are in stock."""

    def __init__(self):
        self.items = {}

    def add(self, name, count=1):
        self.items[name] = self.items.get(name, 0) + count

    def remove(self, name, count=1):
        if self.items.get(name, 0) < count:
            raise KeyError(f"not enough {name} in stock")
        self.items[name] -= count
        if self.items[name] == 0:
            del self.items[name]

    def __len__(self):
        return sum(self.items.values())


Rivers shape the land slowly. Water picks up sand and small stones where it flows fast and drops
them where it slows down, on the inside of bends and at the mouth where it meets the sea. Over
thousands of years a river can move its whole course across a valley, leaving behind curved lakes
where old bends were cut off. Farmers have always settled on these plains because the soil the river
leaves behind is rich, even though the same river that brought the soil can flood the fields in a
wet spring. Many towns built along rivers keep marks on an old wall or bridge showing how high the
water rose in the worst floods, with the year carved next to each line.

Meeting notes, Tuesday. Present: Ana, Ben, Chen, Dara. First item: the release is moved to the end
of the month because the installer still fails on older machines. Ben will write a test that runs
the installer in a clean virtual machine every night. Second item: the documentation needs a page on
upgrading from the previous version; Dara will draft it by Friday. Third item: Chen reported that
the search is slow on large projects. The cause is that every keystroke starts a new search; the fix
is to wait until the user stops typing for two hundred milliseconds. Next meeting in one week.

SELECT customer_id, COUNT(*) AS orders, SUM(total) AS spent
FROM orders
WHERE created_at >= DATE '2024-01-01'
GROUP BY customer_id
HAVING COUNT(*) > 3
ORDER BY spent DESC
LIMIT 10;

The first rule of a good experiment is to change one thing at a time. If you change the recipe and
the oven temperature on the same day and the cake comes out better, you do not know which change
helped. The second rule is to write down what you expected before you look at the result, so that
you cannot quietly move the target afterwards. The third rule is to repeat the measurement: a single
run can be lucky, and a difference smaller than the spread between repeated runs is not a difference.
'''
